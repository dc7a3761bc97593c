"""Nudges shown in the widgets: a banner when a learner's streak is about to end (within
``AT_RISK_HOURS`` of their local midnight, today not yet counted), when they sit in their league
cohort's demotion zone (on the league widget, which has the standings at hand), or when a badge
is one step away. Computed when a widget renders, so it is always current; a learner can turn
them off.

At most one banner at a time: the streak first (it is the one with a deadline), then the
league, then the badge (the scheduler's webhook nudges use the same order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from questline.models import Player
from widgets.data import LockedBadge, StreakView, streak
from widgets.league import LeagueView
from widgets.models import WidgetPreference

AT_RISK_HOURS = 6
NEAR_KINDS = ("count", "distinct_objects", "streak", "level")


@dataclass(frozen=True)
class Nudge:
    kind: str  # streak.at_risk | league.at_risk | badge.near
    hours: int = 0
    days: int = 0
    badge: str = ""
    xp: int = 0  # league.at_risk: XP that would lift the learner out of the demotion zone
    tier: str = ""


def nudges_off(session: Session, tenant_id: int, player_id: int) -> bool:
    known = session.info.get(("nudges_off", tenant_id, player_id))  # widgets.data.viewer
    if known is not None:
        return bool(known)
    return bool(
        session.scalar(
            select(WidgetPreference.nudges_off).where(
                WidgetPreference.tenant_id == tenant_id, WidgetPreference.player_id == player_id
            )
        )
    )


def set_nudges_off(session: Session, tenant_id: int, player_id: int, off: bool) -> None:
    pref = session.get(WidgetPreference, (tenant_id, player_id))
    if pref is None:
        pref = WidgetPreference(tenant_id=tenant_id, player_id=player_id)
        session.add(pref)
    pref.nudges_off = off
    pref.updated_at = datetime.now(UTC)


def streak_at_risk(view: StreakView) -> Nudge | None:
    if view.current > 0 and not view.today_counts and view.hours_left < AT_RISK_HOURS:
        return Nudge("streak.at_risk", hours=view.hours_left, days=view.current)
    return None


def league_at_risk(view: LeagueView | None) -> Nudge | None:
    """The learner stands in the demotion zone of this week's cohort: how far to safety."""
    if view is None or not view.joined:
        return None
    mine = next((row for row, zone in view.rows if row.me), None)
    zone = next((zone for row, zone in view.rows if row.me), None)
    if mine is None or zone != "demotion":
        return None
    safe = [row.xp for row, z in view.rows if z != "demotion"]
    need = max(min(safe) - mine.xp + 1, 1) if safe else 1
    return Nudge("league.at_risk", hours=view.hours_left, xp=need, tier=view.tier)


def badge_near(locked: list[LockedBadge]) -> Nudge | None:
    """A badge whose every criterion is met but one, and that one is a single step short."""
    for badge in locked:
        short = [(kind, have, need) for kind, _, have, need in badge.progress if have < need]
        if len(short) == 1 and short[0][0] in NEAR_KINDS and short[0][2] - short[0][1] == 1:
            return Nudge("badge.near", badge=badge.name)
    return None


def nudge_for(
    session: Session,
    tenant_id: int,
    player: Player,
    *,
    now: datetime,
    locked: list[LockedBadge] | None = None,
    league: LeagueView | None = None,
) -> Nudge | None:
    """The one banner to show now, or None (also when the learner turned nudges off)."""
    if player.streak_current <= 0 and not locked and league_at_risk(league) is None:
        return None
    if nudges_off(session, tenant_id, player.id):
        return None
    found = None
    if player.streak_current > 0:
        found = streak_at_risk(streak(session, tenant_id, player, now=now, freezes=False))
    if found is None:
        found = league_at_risk(league)
    if found is None and locked:
        found = badge_near(locked)
    return found
