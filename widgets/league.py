"""The league widget's data: the viewer's cohort this week, with places, zones and time left.

Read through the leagues' own functions (``questline.league_repo``, ``questline.leagues``,
``engine.leagues``): the cohort's live XP from Redis, from the ledger when Redis cannot answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.leagues import standings, time_left, week_window
from questline.leaderboards import Leaderboards
from questline.league_models import LeagueMembership
from questline.league_repo import league_by_scope, league_config, league_xp, tenant_zone
from questline.leagues import LeagueStore
from questline.repository import TenantRepository
from widgets.data import BoardRow, opted_out

log = logging.getLogger("questline.widgets")


@dataclass(frozen=True)
class LeagueView:
    enabled: bool
    joined: bool
    hours_left: int
    tier: str = ""
    promote: int = 0
    demote: int = 0
    rows: tuple[tuple[BoardRow, str], ...] = ()  # (row, zone: promotion / safe / demotion)
    degraded: bool = False


def league(
    session: Session,
    boards: Leaderboards,
    tenant_id: int,
    player_id: int,
    *,
    scope: str,
    anonymise: bool,
    now: datetime,
) -> LeagueView:
    found = league_by_scope(session, tenant_id, scope)
    if found is None or not found.enabled:
        return LeagueView(enabled=False, joined=False, hours_left=0)
    config = league_config(found)
    week = week_window(now, tenant_zone(session, tenant_id))
    hours = int(time_left(now, week).total_seconds() // 3600)
    seat = session.execute(
        select(LeagueMembership.cohort_id, LeagueMembership.tier).where(
            LeagueMembership.tenant_id == tenant_id,
            LeagueMembership.league_id == found.id,
            LeagueMembership.week == week.key,
            LeagueMembership.player_id == player_id,
        )
    ).first()
    if seat is None:
        return LeagueView(enabled=True, joined=False, hours_left=hours)
    cohort_id, tier = int(seat[0]), int(seat[1])
    members = list(
        session.scalars(
            select(LeagueMembership.player_id).where(
                LeagueMembership.tenant_id == tenant_id, LeagueMembership.cohort_id == cohort_id
            )
        )
    )
    degraded = False
    try:
        live = LeagueStore(boards.client, boards.prefix).cohort_scores(tenant_id, cohort_id)
    except Exception:
        log.warning("league widget from database: redis unavailable", exc_info=True)
        live, degraded = league_xp(session, found, week, members), True
    table = standings({pid: max(live.get(pid, 0), 0) for pid in members}, tier, config)
    names = TenantRepository(session, tenant_id).names(members)
    hidden = opted_out(session, tenant_id, members)
    rows = []
    for s in table:
        me = s.player_id == player_id
        shown = me or not (anonymise or s.player_id in hidden)
        rows.append(
            (BoardRow(s.rank, s.xp, names.get(s.player_id, "") if shown else None, me), s.zone)
        )
    return LeagueView(
        enabled=True,
        joined=True,
        hours_left=hours,
        tier=config.tier_name(tier),
        promote=config.promote_count(tier),
        demote=config.demote_count(tier),
        rows=tuple(rows),
        degraded=degraded,
    )
