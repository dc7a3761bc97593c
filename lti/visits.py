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
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from engine.events import Actor, parse_event
from identity.players import resolve_players
from identity.roles import is_course_staff
from lti.canvas_link import canvas_user_id, link_canvas_user
from lti.models import LtiCourse, LtiCourseMember, LtiLaunch
from questline.ingest import IngestReport, store_events, upsert_ignore
from questline.models import Player, PlayerIdentity

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
LAUNCH_LIFETIME = timedelta(hours=8)
# A member row's ``updated_at`` (last seen in the course) is refreshed at most this often when
# nothing else about the member changed: one UPDATE per hour, not one per launch.
MEMBER_TOUCH_INTERVAL = timedelta(hours=1)


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
    return course_and_member(session, tenant_id, registration_id, claims, None)[0]


def course_and_member(
    session: Session,
    tenant_id: int,
    registration_id: int,
    claims: dict[str, Any],
    player_id: int | None,
    known: LtiCourse | None = None,
) -> tuple[LtiCourse | None, LtiCourseMember | None]:
    """``upsert_course``, reading the player's membership row in the same statement; with
    ``known`` (the course, already read) only its endpoints are brought up to date."""
    context = claims.get(CLAIM + "context") or {}
    context_id = context.get("id") if isinstance(context, dict) else None
    if not context_id:
        return None, None
    context_id = str(context_id)
    query = select(LtiCourse, LtiCourseMember).where(
        LtiCourse.registration_id == registration_id, LtiCourse.context_id == context_id
    )
    query = query.outerjoin(
        LtiCourseMember,
        and_(LtiCourseMember.course_id == LtiCourse.id, LtiCourseMember.player_id == player_id),
    )
    found = (known, None) if known is not None else session.execute(query).one_or_none()
    course, member = found if found is not None else (None, None)
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
        course, member = session.execute(query).one()
    # Assigned only when different: an unchanged course costs no UPDATE.
    _set(course, "title", context.get("title") or context.get("label") or course.title)
    _set(course, "deployment_id", claims.get(CLAIM + "deployment_id") or course.deployment_id)
    nrps = claims.get(NRPS_CLAIM) or {}
    if isinstance(nrps, dict) and nrps.get("context_memberships_url"):
        _set(course, "nrps_url", nrps["context_memberships_url"])
    ags = claims.get(AGS_CLAIM) or {}
    if isinstance(ags, dict) and ags.get("lineitems"):
        _set(course, "ags_lineitems_url", ags["lineitems"])
        _set(course, "ags_scopes", list(ags.get("scope") or []))
    return course, member


def _set(row: object, name: str, value: Any) -> None:
    if getattr(row, name) != value:
        setattr(row, name, value)


def upsert_member(
    session: Session,
    course: LtiCourse,
    player_id: int,
    sub: str,
    roles: list[str],
    locale: str | None,
    now: datetime,
    member: LtiCourseMember | None = None,
) -> None:
    """Create or update the player's roles in the course; ``member`` is the row when the
    caller already read it."""
    if member is None:
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
    changed = (member.user_sub, member.roles) != (sub, roles) or (
        locale is not None and member.locale != locale
    )
    seen = member.updated_at
    if seen is not None and seen.tzinfo is None:  # SQLite hands back naive UTC
        seen = seen.replace(tzinfo=UTC)
    if changed or seen is None or now - seen >= MEMBER_TOUCH_INTERVAL:
        member.user_sub = sub
        member.roles = roles
        member.locale = locale or member.locale
        member.updated_at = now


def _returning(
    session: Session, tenant_id: int, registration_id: int, actor: Actor, context_id: Any
) -> tuple[Player, LtiCourse | None, LtiCourseMember | None] | None:
    """A returning learner in one statement: the player (by identity), the launch's course
    and the player's membership in it (either may be missing); None for a new player."""
    query = (
        select(Player, LtiCourse, LtiCourseMember)
        .select_from(PlayerIdentity)
        .join(Player, Player.id == PlayerIdentity.player_id)
        .outerjoin(
            LtiCourse,
            and_(
                LtiCourse.registration_id == registration_id,
                LtiCourse.context_id == (str(context_id) if context_id else None),
            ),
        )
        .outerjoin(
            LtiCourseMember,
            and_(LtiCourseMember.course_id == LtiCourse.id, LtiCourseMember.player_id == Player.id),
        )
        .where(
            PlayerIdentity.tenant_id == tenant_id,
            PlayerIdentity.kind == "actor",
            PlayerIdentity.value == actor.id,
        )
    )
    row = session.execute(query).one_or_none()
    if row is None:
        return None
    player, course, member = row
    assert player.tenant_id == tenant_id
    return player, course, member


def _player(session: Session, tenant_id: int, actor: Actor) -> Player:
    """The actor's player: a returning one in one statement (identity joined to the player),
    a new one through ``identity.players`` (which handles the creation race)."""
    player = session.scalars(
        select(Player)
        .join(PlayerIdentity, PlayerIdentity.player_id == Player.id)
        .where(
            PlayerIdentity.tenant_id == tenant_id,
            PlayerIdentity.kind == "actor",
            PlayerIdentity.value == actor.id,
        )
    ).one_or_none()
    if player is None:
        player_id = resolve_players(session, tenant_id, [actor])[("actor", str(actor.id))]
        player = session.get(Player, player_id)
    assert player is not None and player.tenant_id == tenant_id
    return player


def record_visit(
    session: Session,
    tenant_id: int,
    registration_id: int,
    claims: dict[str, Any],
    now: datetime,
    keep_launch: bool = False,
) -> Visit:
    """Apply a validated launch's claims; returns what the page and the caller need.
    ``keep_launch`` stores the launch record even for a learner's visit."""
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
    context = claims.get(CLAIM + "context")
    context_id = context.get("id") if isinstance(context, dict) else None
    known = _returning(session, tenant_id, registration_id, actor, context_id)
    player = known[0] if known is not None else _player(session, tenant_id, actor)
    canvas_user = canvas_user_id(custom)
    if canvas_user is not None:  # Canvas Live Events name this person by Canvas id
        survivor = link_canvas_user(session, tenant_id, registration_id, player.id, canvas_user)
        if survivor != player.id:  # Live Events had made a player first: merged into the older
            player, known = session.get(Player, survivor), None
            assert player is not None
    player_id = player.id
    if name:
        _set(player, "display_name", name[:200])
    if email:
        _set(player, "email", email)
    if timezone:
        _set(player, "timezone", timezone)

    roles = [r for r in claims.get(CLAIM + "roles") or [] if isinstance(r, str)]
    if known is not None and (known[1] is not None or not context_id):
        course, member = known[1], known[2]
        if course is not None:
            course = course_and_member(session, tenant_id, registration_id, claims, None, course)[0]
    else:
        course, member = course_and_member(session, tenant_id, registration_id, claims, player_id)
    if course is not None:
        locale = claims.get("locale") if isinstance(claims.get("locale"), str) else None
        upsert_member(session, course, player_id, sub, roles, locale, now, member)

    launch_id = secrets.token_urlsafe(32)
    message_type = str(claims.get(CLAIM + "message_type"))
    if keep_launch or message_type != "LtiResourceLinkRequest" or is_instructor(roles):
        # Only pages that post back (deep linking, the instructor's gradebook form, a launch
        # page that still has a check to make) refer to the launch again: a learner's plain
        # visit skips the row and its claims JSON.
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
