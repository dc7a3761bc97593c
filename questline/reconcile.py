"""Rebuild every Redis board from the PostgreSQL ledger and report the drift that was fixed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from questline.db import Database, pairs
from questline.leaderboards import Leaderboards, course_board
from questline.league_repo import group_boards, groups_of
from questline.models import Player, Tenant, XpLedger


@dataclass
class TenantDrift:
    tenant_id: int
    boards: int = 0
    entries: int = 0
    fixed: int = 0
    # Players whose stored total disagrees with their ledger: a bug if ever non-empty.
    aggregate_mismatches: list[int] = field(default_factory=list)


def ledger_boards(db: Database, tenant_id: int) -> tuple[dict[str, dict[int, int]], list[int]]:
    """Every board's exact content according to the ledger, and aggregate mismatches."""
    boards: dict[str, dict[int, int]] = defaultdict(dict)
    with db.sessions() as session:
        totals = pairs(
            session.execute(
                select(XpLedger.player_id, func.sum(XpLedger.amount))
                .where(XpLedger.tenant_id == tenant_id)
                .group_by(XpLedger.player_id)
            )
        )
        for course, pid, xp in session.execute(
            select(XpLedger.course, XpLedger.player_id, func.sum(XpLedger.amount))
            .where(XpLedger.tenant_id == tenant_id, XpLedger.course.is_not(None))
            .group_by(XpLedger.course, XpLedger.player_id)
        ):
            if xp > 0:
                boards[course_board(course)][int(pid)] = int(xp)
        stored = pairs(
            session.execute(select(Player.id, Player.xp).where(Player.tenant_id == tenant_id))
        )
        groups = groups_of(session, tenant_id)  # group boards rank members (issue 4)
    boards["tenant"] = {int(pid): int(xp) for pid, xp in totals.items() if xp > 0}
    boards.update(group_boards(boards["tenant"], groups))
    mismatched = sorted(pid for pid, xp in stored.items() if int(totals.get(pid, 0)) != xp)
    return dict(boards), mismatched


def _diff(current: dict[int, int], truth: dict[int, int]) -> int:
    return sum(1 for pid in current.keys() | truth.keys() if current.get(pid) != truth.get(pid))


def reconcile(
    db: Database, boards: Leaderboards, tenant_id: int | None = None
) -> list[TenantDrift]:
    """Make Redis equal the ledger for one tenant or all; returns what differed per tenant."""
    with db.sessions() as session:
        query = select(Tenant.id).order_by(Tenant.id)
        if tenant_id is not None:
            query = query.where(Tenant.id == tenant_id)
        tenant_ids = list(session.scalars(query))
    report = []
    for tid in tenant_ids:
        truth, mismatched = ledger_boards(db, tid)
        current = boards.read_all(tid)
        drift = TenantDrift(tid, boards=len(truth), aggregate_mismatches=mismatched)
        drift.entries = sum(len(scores) for scores in truth.values())
        drift.fixed = sum(
            _diff(current.get(board, {}), truth.get(board, {}))
            for board in current.keys() | truth.keys()
        )
        boards.replace_all(tid, truth)
        report.append(drift)
    return report


def reconcile_leagues(
    db: Database, boards: Leaderboards, tenant_id: int | None = None
) -> dict[int, int]:
    """Rebuild the current week's league cohorts and standings, and the day/week/month boards,
    from PostgreSQL (issue 4); returns {tenant: players joined late}."""
    from datetime import UTC, datetime

    from questline.leagues import LeagueStore
    from workers.leagues import rebuild_current

    store = LeagueStore(boards.client, boards.prefix)
    with db.sessions() as session:
        query = select(Tenant.id).order_by(Tenant.id)
        if tenant_id is not None:
            query = query.where(Tenant.id == tenant_id)
        tenant_ids = list(session.scalars(query))
    now = datetime.now(UTC)
    return {tid: rebuild_current(db, store, tid, now) for tid in tenant_ids}
