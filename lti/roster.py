"""Names and Role Provisioning Services: the whole class becomes players before they launch,
so boards and leagues know everyone. Run on an instructor's launch and on a schedule
(``questline lti roster sync``), as a job; the HTTP call runs outside any transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import requests
from pylti1p3.exception import LtiException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.events import Actor
from identity.players import resolve_players
from lti import services
from lti.keys import KeyUnavailable, SigningKeyCache
from lti.models import LtiCourse
from lti.visits import actor_id, upsert_member
from questline.db import Database
from questline.models import Player

log = logging.getLogger("questline.lti.roster")


@dataclass(frozen=True)
class RosterSync:
    members: int
    created: int


def sync_course(
    database: Database, keys: SigningKeyCache, course_id: int, now: datetime
) -> RosterSync:
    """Fetch the course's memberships and create or update a player for each active member."""
    with database.sessions() as session:
        course = session.get(LtiCourse, course_id)
        if course is None or not course.nrps_url:
            return RosterSync(0, 0)
        members = services.nrps(services.connector(session, course, keys), course).get_members()
        tenant_id, registration_id = course.tenant_id, course.registration_id
    active = [m for m in members if m.get("user_id") and m.get("status", "Active") == "Active"]
    actors = {
        str(m["user_id"]): Actor(
            id=actor_id(registration_id, str(m["user_id"])),
            email=m.get("email") or None,
            name=m.get("name") or None,
        )
        for m in active
    }
    with database.session() as session:
        before = _player_count(session, tenant_id)
        resolved = resolve_players(session, tenant_id, actors.values())
        course = session.get(LtiCourse, course_id)
        assert course is not None
        for member in active:
            sub = str(member["user_id"])
            player_id = resolved[("actor", actors[sub].id or "")]
            player = session.get(Player, player_id)
            assert player is not None
            if member.get("name"):
                player.display_name = str(member["name"])[:200]
            if member.get("email"):
                player.email = str(member["email"])
            upsert_member(
                session, course, player_id, sub, list(member.get("roles") or []), None, now
            )
        course.roster_synced_at = now
        created = _player_count(session, tenant_id) - before
    return RosterSync(len(active), created)


def _player_count(session: Session, tenant_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Player).where(Player.tenant_id == tenant_id)
        )
        or 0
    )


def sync_all(
    database: Database, secret: str, now: datetime, course_id: int | None = None
) -> list[str]:
    """The scheduled sync: every course that offers NRPS (or one). A platform that fails does
    not stop the others; each course gets one line saying what happened."""
    keys = SigningKeyCache(secret)
    with database.sessions() as session:
        query = select(LtiCourse.id).where(LtiCourse.nrps_url.is_not(None))
        if course_id is not None:
            query = query.where(LtiCourse.id == course_id)
        course_ids = list(session.scalars(query.order_by(LtiCourse.id)))
    lines = []
    for cid in course_ids:
        try:
            result = sync_course(database, keys, cid, now)
        except (LtiException, requests.RequestException, KeyUnavailable) as exc:
            log.error("roster sync failed", extra={"course_id": cid, "error": str(exc)})
            lines.append(f"failed course {cid}: {exc}")
            continue
        lines.append(f"course {cid}: {result.members} members, {result.created} new players")
    return lines
