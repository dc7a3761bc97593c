"""A course's players as its instructors see them: whoever earned XP in the course (``course`` on
their events) or is on its LMS roster (LTI launches and NRPS syncs), with course XP and level.

Names only, never emails or identities: an instructor needs to know who is doing what in their
class, not how to reach them outside it (the LMS already gives them that).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from lti.models import LtiCourse, LtiCourseMember
from questline.models import Player, PlayerCourseStats

ROSTER_LIMIT = 2000


def course_roster(session: Session, tenant_id: int, course: str) -> list[dict[str, Any]]:
    """The course's players, most course XP first (at most ``ROSTER_LIMIT``)."""
    by_xp = select(PlayerCourseStats.player_id).where(
        PlayerCourseStats.tenant_id == tenant_id, PlayerCourseStats.course == course
    )
    by_roster = (
        select(LtiCourseMember.player_id)
        .join(LtiCourse, LtiCourse.id == LtiCourseMember.course_id)
        .where(LtiCourseMember.tenant_id == tenant_id, LtiCourse.context_id == course)
    )
    members = union(by_xp, by_roster).subquery()
    rows = session.execute(
        select(Player.id, Player.display_name, Player.level, PlayerCourseStats.xp)
        .join(members, members.c.player_id == Player.id)
        .outerjoin(
            PlayerCourseStats,
            (PlayerCourseStats.player_id == Player.id)
            & (PlayerCourseStats.tenant_id == tenant_id)
            & (PlayerCourseStats.course == course),
        )
        .where(Player.tenant_id == tenant_id)
        .order_by(PlayerCourseStats.xp.desc().nulls_last(), Player.id)
        .limit(ROSTER_LIMIT)
    ).all()
    return [
        {"id": pid, "display_name": name, "level": level, "course_xp": int(xp or 0)}
        for pid, name, level, xp in rows
    ]
