"""What a validated launch changes: the player (created or updated), the course and the
player's roles in it, the launch record, and a ``session.started`` activity in the inbox.

The activity goes through the same path as every adapter: a canonical event built with
``parse_event`` and stored with ``store_events`` in the caller's transaction; the caller wakes
the dispatcher only after the commit (ARCHITECTURE invariant 2).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.events import Actor, parse_event
from identity.players import resolve_players
from identity.roles import is_course_staff
from lti.models import LtiCourse, LtiCourseMember, LtiLaunch
from questline.ingest import IngestReport, store_events, upsert_ignore
from questline.models import Player

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
LAUNCH_LIFETIME = timedelta(hours=8)


def is_instructor(roles: list[str]) -> bool:
    """Instructors, admins, designers and TAs of *this course* see the course dashboard; others
    the widget. Context roles only: an institution role (a faculty member taking a course as a
    learner) does not count (identity/roles.py, which also derives the player's instructor role)."""
    return is_course_staff(roles)


def actor_id(registration_id: int, sub: str) -> str:
    """The player identity of an LTI user: the registration stands for the issuer (and client),
    so two platforms' users with the same ``sub`` stay two players."""
    return f"lti:{registration_id}:{sub}"


def _zone(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return value


@dataclass(frozen=True)
class Visit:
    launch_id: str
    player_id: int
    course_id: int | None
    inbox_ids: list[int]
    instructor: bool
    # The rows themselves, held so the session's (weak) identity map keeps them: the page
    # rendered after the visit reads them again without another SELECT.
    rows: tuple[object, ...] = field(default=(), repr=False, compare=False)


def upsert_course(
    session: Session, tenant_id: int, registration_id: int, claims: dict[str, Any]
) -> LtiCourse | None:
    """The course of a launch with its service endpoints, created on first sight."""
    context = claims.get(CLAIM + "context") or {}
    context_id = context.get("id") if isinstance(context, dict) else None
    if not context_id:
        return None
    context_id = str(context_id)
    query = select(LtiCourse).where(
        LtiCourse.registration_id == registration_id, LtiCourse.context_id == context_id
    )
    course = session.scalars(query).one_or_none()
    if course is None:
        # Insert-or-skip, then read: the first launches of a course arrive together (a class
        # opening the same link), and two of them must not both try to create it.
        session.execute(
            upsert_ignore(session, LtiCourse),
            [
                {
                    "tenant_id": tenant_id,
                    "registration_id": registration_id,
                    "context_id": context_id,
                    "ags_enabled": False,
                }
            ],
        )
        course = session.scalars(query).one()
    course.title = context.get("title") or context.get("label") or course.title
    course.deployment_id = claims.get(CLAIM + "deployment_id") or course.deployment_id
    nrps = claims.get(NRPS_CLAIM) or {}
    if isinstance(nrps, dict) and nrps.get("context_memberships_url"):
        course.nrps_url = nrps["context_memberships_url"]
    ags = claims.get(AGS_CLAIM) or {}
    if isinstance(ags, dict) and ags.get("lineitems"):
        course.ags_lineitems_url = ags["lineitems"]
        course.ags_scopes = list(ags.get("scope") or [])
    session.flush()
    return course


def upsert_member(
    session: Session,
    course: LtiCourse,
    player_id: int,
    sub: str,
    roles: list[str],
    locale: str | None,
    now: datetime,
) -> None:
    member = session.get(LtiCourseMember, (course.id, player_id))
    if member is None:
        # Same race as the course: a roster sync and a launch may add the member together.
        session.execute(
            upsert_ignore(session, LtiCourseMember),
            [
                {
                    "course_id": course.id,
                    "player_id": player_id,
                    "tenant_id": course.tenant_id,
                    "user_sub": sub,
                    "roles": roles,
                    "updated_at": now,
                }
            ],
        )
        member = session.get(LtiCourseMember, (course.id, player_id))
        assert member is not None
    member.user_sub = sub
    member.roles = roles
    member.locale = locale or member.locale
    member.updated_at = now


def record_visit(
    session: Session,
    tenant_id: int,
    registration_id: int,
    claims: dict[str, Any],
    now: datetime,
) -> Visit:
    """Apply a validated launch's claims; returns what the page and the caller need."""
    sub = str(claims["sub"])
    custom = claims.get(CLAIM + "custom") or {}
    timezone = _zone(claims.get("zoneinfo")) or _zone(
        custom.get("timezone") if isinstance(custom, dict) else None
    )
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    name = claims.get("name") or " ".join(
        str(p) for p in (claims.get("given_name"), claims.get("family_name")) if p
    )
    actor = Actor(
        id=actor_id(registration_id, sub), email=email, name=name or None, timezone=timezone
    )
    player_id = resolve_players(session, tenant_id, [actor])[("actor", actor.id)]
    player = session.get(Player, player_id)
    assert player is not None and player.tenant_id == tenant_id
    if name:
        player.display_name = name[:200]
    if email:
        player.email = email
    if timezone:
        player.timezone = timezone

    roles = [r for r in claims.get(CLAIM + "roles") or [] if isinstance(r, str)]
    course = upsert_course(session, tenant_id, registration_id, claims)
    if course is not None:
        locale = claims.get("locale") if isinstance(claims.get("locale"), str) else None
        upsert_member(session, course, player_id, sub, roles, locale, now)

    launch_id = secrets.token_urlsafe(32)
    message_type = str(claims.get(CLAIM + "message_type"))
    session.add(
        LtiLaunch(
            id=launch_id,
            tenant_id=tenant_id,
            registration_id=registration_id,
            player_id=player_id,
            course_id=course.id if course is not None else None,
            message_type=message_type,
            claims=claims,
            created_at=now,
            expires_at=now + LAUNCH_LIFETIME,
        )
    )
    report = IngestReport()
    if message_type == "LtiResourceLinkRequest":
        event = _session_started(registration_id, claims, actor, course, now)
        store_events(session, tenant_id, [(parse_event(event), event)], now, report)
    session.flush()
    return Visit(
        launch_id,
        player_id,
        course.id if course else None,
        report.inbox_ids,
        is_instructor(roles),
        (player, course),
    )


def _session_started(
    registration_id: int,
    claims: dict[str, Any],
    actor: Actor,
    course: LtiCourse | None,
    now: datetime,
) -> dict[str, Any]:
    """The canonical event for a visit. Its id hashes issuer and nonce (unique per launch, and
    the nonce is accepted once), so a retried store can never count the visit twice."""
    digest = hashlib.sha256(f"{claims['iss']}\n{claims['nonce']}".encode()).hexdigest()[:40]
    link = claims.get(CLAIM + "resource_link") or {}
    event: dict[str, Any] = {
        "id": f"launch-{digest}",
        "source": f"lti:{registration_id}",
        "type": "session.started",
        "actor": {
            k: v
            for k, v in {
                "id": actor.id,
                "email": actor.email,
                "name": actor.name,
                "timezone": actor.timezone,
            }.items()
            if v
        },
        "occurred_at": now.isoformat(),
    }
    if isinstance(link, dict) and link.get("id"):
        event["object"] = {"id": str(link["id"]), "type": "lti_resource_link"}
    if course is not None:
        event["context"] = {"course": course.context_id}
    return event
