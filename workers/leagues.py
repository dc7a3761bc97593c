"""The league step after each batch, and the week close run by ``questline scheduler``.

Both read XP from the ledger, the truth (ARCHITECTURE invariant 1). The step joins players to a
cohort at their first XP of the week and writes absolute weekly totals to Redis; if it fails,
nothing is lost: the close job joins anyone the step missed before it ranks a week, and
``questline reconcile`` rebuilds the current week (``rebuild_current``).

The close moves each week forward one step per transaction (open -> promoted -> closed) under a
row lock taken with ``SKIP LOCKED``, so two schedulers never close one week twice, and a crash
between promotion and the history write resumes at the history write. Both steps are
idempotent: tiers are set to absolute values guarded by ``tier_week``; results,
``league.finished`` inbox events and outbound webhook messages are inserted once per (league,
week, player) (and subscription). On PostgreSQL both steps are set-based SQL (``league_bulk``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from engine.leagues import WINDOW_KINDS, Result, Window, close_cohort, week_window, window
from questline import league_bulk
from questline.db import Database
from questline.leaderboards import Leaderboards
from questline.league_models import (
    League,
    LeagueMembership,
    LeaguePlayer,
    LeagueResult,
    LeagueWeek,
)
from questline.league_repo import (
    enabled_leagues,
    group_boards,
    groups_of,
    insert_ignore,
    join,
    league_config,
    league_xp,
    memberships,
    previous_week_open,
    tenant_zone,
    unseated,
    windowed_xp,
)
from questline.league_rewards import announce_finished, emit_finished
from questline.leagues import LeagueStore

if TYPE_CHECKING:
    from workers.context import Context

log = logging.getLogger("questline.leagues")

BoardWrites = Mapping[tuple[int, str], Mapping[int, int]]


@dataclass
class StepReport:
    joined: int = 0
    deferred: int = 0
    cohort_writes: int = 0
    window_writes: int = 0


def after_batch(db: Database, boards: Leaderboards, writes: BoardWrites) -> bool:
    """The pipeline's hook: the league step with a store on the boards' Redis and prefix."""
    return league_step(db, LeagueStore(boards.client, boards.prefix), writes, datetime.now(UTC))


def all_time_totals(boards: BoardWrites) -> dict[int, dict[int, int]]:
    """{tenant: {player: all-time XP}} from a batch's tenant board writes."""
    return {t: dict(scores) for (t, board), scores in boards.items() if board == "tenant"}


def touched_players(boards: BoardWrites) -> dict[int, set[int]]:
    """{tenant: players} from a batch's board writes (every player who gained XP)."""
    out: dict[int, set[int]] = defaultdict(set)
    for (tenant_id, _board), scores in boards.items():
        out[tenant_id].update(scores)
    return out


def league_step(db: Database, store: LeagueStore, boards: BoardWrites, now: datetime) -> bool:
    """Joins and Redis writes for the players of one batch; False (logged) if it failed.

    Called after the batch committed: a failure here never undoes an award.
    """
    try:
        apply_step(db, store, touched_players(boards), now, all_time_totals(boards))
        return True
    except Exception:
        log.error("league step failed; reconcile or the week close repairs it", exc_info=True)
        return False


def apply_step(
    db: Database,
    store: LeagueStore,
    touched: Mapping[int, set[int]],
    now: datetime,
    all_time: Mapping[int, Mapping[int, int]] | None = None,
) -> StepReport:
    """Joins, cohort standings, windowed boards and group boards for the players of a batch.

    ``all_time`` ({tenant: {player: all-time XP}}, the batch's tenant board writes) feeds the
    all-time group boards; the windowed ones are summed from the ledger here."""
    report = StepReport()
    group_writes: list[tuple[int, str, dict[int, int]]] = []  # all-time group boards
    cohort_writes: list[tuple[int, int, dict[int, int]]] = []
    window_writes: list[tuple[int, Window, str, dict[int, int]]] = []
    grown: list[tuple[int, int]] = []  # (tenant, cohort) that took new members
    with db.session() as session:
        for tenant_id, players in sorted(touched.items()):
            if not players:
                continue
            zone = tenant_zone(session, tenant_id)
            windows = {kind: window(kind, now, zone) for kind in WINDOW_KINDS}
            sums = windowed_xp(session, tenant_id, players, windows)
            groups = groups_of(session, tenant_id, players)
            if groups:
                for boards in sums.values():
                    boards.update(group_boards(boards.get("tenant", {}), groups))
                totals = (all_time or {}).get(tenant_id, {})
                group_writes.extend(
                    (tenant_id, b, s) for b, s in group_boards(totals, groups).items()
                )
            for kind, boards in sums.items():
                for board, scores in boards.items():
                    window_writes.append((tenant_id, windows[kind], board, scores))
            for league in enabled_leagues(session, tenant_id):
                week = windows["week"]
                # League XP, not the weekly board: league rewards are not activity.
                xp = {p: x for p, x in league_xp(session, league, week, players).items() if x > 0}
                if not xp:
                    continue
                if previous_week_open(session, league, week, zone):
                    # Last week is not closed yet: these players' tiers are about to change.
                    # The close job joins them right after it closes that week.
                    seats = memberships(session, league, week.key, xp)
                    report.deferred += len(set(xp) - seats.keys())
                else:
                    joined = join(session, league, week, xp, db.is_postgres)
                    report.joined += len(joined)
                    grown.extend((tenant_id, c) for c in set(joined.values()))
                    seats = memberships(session, league, week.key, xp)
                by_cohort: dict[int, dict[int, int]] = defaultdict(dict)
                for pid, cohort in seats.items():
                    by_cohort[cohort][pid] = xp[pid]
                cohort_writes.extend((tenant_id, c, s) for c, s in by_cohort.items())
    pipe = store.client.pipeline(transaction=False)
    for tenant_id, cohort, scores in cohort_writes:
        store.record_cohort(pipe, tenant_id, cohort, scores)
    for tenant_id, win, board, scores in window_writes:
        store.record_window(pipe, tenant_id, win.kind, win.key, board, scores)
    all_boards = Leaderboards(store.client, store.prefix)
    for tenant_id, board, scores in group_writes:
        all_boards.record(pipe, tenant_id, board, scores)
    for tenant_id, cohort in grown:  # cached member lists of these cohorts are now short
        store.forget_cohorts(pipe, tenant_id, [cohort])
    pipe.execute()
    report.cohort_writes, report.window_writes = len(cohort_writes), len(window_writes)
    return report


# --- the week close -------------------------------------------------------------------------


@dataclass
class CloseReport:
    weeks_closed: list[tuple[int, str]] = field(default_factory=list)
    promoted: int = 0
    demoted: int = 0
    results: int = 0
    joined_late: int = 0
    events: int = 0  # league.finished inbox events stored for rewards by rule
    messages: int = 0  # league.finished outbound webhook messages (outbox rows)


def week_results(session: Session, league: League, week: Window) -> list[tuple[int, Result, int]]:
    """(cohort id, result, cohort members) for every member, from memberships + the ledger.

    Deterministic: it reads only the week's memberships (with the tier each played in) and
    the ledger inside the week, so running it again after a crash gives the same answer.
    """
    config = league_config(league)
    members = session.execute(
        select(LeagueMembership.player_id, LeagueMembership.cohort_id, LeagueMembership.tier).where(
            LeagueMembership.tenant_id == league.tenant_id,
            LeagueMembership.league_id == league.id,
            LeagueMembership.week == week.key,
        )
    ).all()
    xp = league_xp(session, league, week)
    cohorts: dict[int, dict[int, int]] = defaultdict(dict)
    tiers: dict[int, int] = {}
    for pid, cohort, tier in members:
        cohorts[int(cohort)][int(pid)] = xp.get(int(pid), 0)
        tiers[int(cohort)] = int(tier)
    out = []
    for cohort, scores in cohorts.items():
        for result in close_cohort(scores, tiers[cohort], config):
            out.append((cohort, result, len(scores)))
    return out


@dataclass(frozen=True)
class WeekRanking:
    """A ranked week: how many members, promoted and demoted. ``rows`` holds every member's
    result on the Python path (SQLite); PostgreSQL keeps them in the transaction's temporary
    table instead (``league_bulk.rank_week``) and ``rows`` is empty."""

    members: int
    promoted: int
    demoted: int
    rows: list[tuple[int, Result, int]] = field(default_factory=list)


def _rank(session: Session, league: League, week: Window, pg: bool) -> WeekRanking:
    if pg:
        ranked = league_bulk.rank_week(session, league, league_config(league), week)
        return WeekRanking(ranked.members, ranked.promoted, ranked.demoted)
    rows = week_results(session, league, week)
    return WeekRanking(
        len(rows),
        sum(r.outcome == "promoted" for _, r, _ in rows),
        sum(r.outcome == "demoted" for _, r, _ in rows),
        rows,
    )


def _promote(session: Session, league: League, week: str, ranking: WeekRanking, pg: bool) -> None:
    """Set each member's next tier, once per week (``tier_week`` guards a re-run)."""
    if pg:
        league_bulk.promote(session, league, week)
        return
    moves = [(r.player_id, r.next_tier) for _, r, _ in ranking.rows if r.next_tier != r.tier]
    guard = (LeaguePlayer.tier_week.is_(None)) | (LeaguePlayer.tier_week < week)
    for pid, nxt in moves:
        session.execute(
            update(LeaguePlayer)
            .where(LeaguePlayer.league_id == league.id, LeaguePlayer.player_id == pid, guard)
            .values(tier=nxt, tier_week=week)
        )


def _write_history(
    session: Session,
    league: League,
    window_: Window,
    ranking: WeekRanking,
    pg: bool,
    now: datetime,
) -> tuple[int, int]:
    """Results (the history), one ``league.finished`` inbox event per member (rewards by rule)
    and one outbound webhook message per member and subscription that wants
    ``league.finished``; returns (events, messages) stored now."""
    config = league_config(league)
    if pg:
        return league_bulk.write_history(session, league, config, window_, now)
    week = window_.key
    rows = ranking.rows
    results: list[dict[str, Any]] = [
        {
            "tenant_id": league.tenant_id,
            "league_id": league.id,
            "week": week,
            "cohort_id": cohort,
            "player_id": r.player_id,
            "tier": r.tier,
            "rank": r.rank,
            "cohort_members": n,
            "xp": r.xp,
            "zone": r.zone,
            "outcome": r.outcome,
            "next_tier": r.next_tier,
        }
        for cohort, r, n in rows
    ]
    keys = ["league_id", "week", "player_id"]
    for chunk in _chunks(results, 5000):
        session.execute(insert_ignore(LeagueResult, pg, keys), chunk)
    stored, skipped = emit_finished(session, league, config, window_, rows, now)
    if skipped:
        log.warning(
            "league.finished not emitted for players without an actor id or email",
            extra={"league_id": league.id, "week": week, "skipped": skipped},
        )
    return stored, announce_finished(session, league, config, week, rows, now)


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _lock_due_week(
    session: Session, due_before: datetime, pg: bool, tenant_id: int | None
) -> LeagueWeek | None:
    query = (
        select(LeagueWeek)
        .where(LeagueWeek.status != "closed", LeagueWeek.ends_at <= due_before)
        .order_by(LeagueWeek.ends_at, LeagueWeek.id)
        .limit(1)
    )
    if tenant_id is not None:
        query = query.where(LeagueWeek.tenant_id == tenant_id)
    # Weeks of one league close in order: the next week's late joins need this week's tiers.
    earlier = aliased(LeagueWeek)
    query = query.where(
        ~select(earlier.id)
        .where(
            earlier.league_id == LeagueWeek.league_id,
            earlier.status != "closed",
            earlier.ends_at < LeagueWeek.ends_at,
        )
        .exists()
    )
    if pg:
        query = query.with_for_update(skip_locked=True)
    return session.scalar(query)


def close_step(
    db: Database, now: datetime, grace: timedelta, tenant_id: int | None = None
) -> tuple[LeagueWeek, str, WeekRanking, tuple[int, int]] | None:
    """Move one due week one step forward in one transaction; None when nothing is due.

    Returns the week, its new status, its ranking and the (inbox events, outbox messages)
    stored by the history step."""
    with db.session() as session:
        row = _lock_due_week(session, now - grace, db.is_postgres, tenant_id)
        if row is None:
            return None
        league = session.get(League, row.league_id)
        assert league is not None
        zone = tenant_zone(session, league.tenant_id)
        week = week_window(row.starts_at, zone)
        if row.status == "open":
            # Anyone who earned XP in the week but whose join the step missed plays too.
            join(session, league, week, unseated(session, league, week), db.is_postgres)
            ranking = _rank(session, league, week, db.is_postgres)
            _promote(session, league, week.key, ranking, db.is_postgres)
            row.status = "promoted"
            return row, "promoted", ranking, (0, 0)
        ranking = _rank(session, league, week, db.is_postgres)
        stored = _write_history(session, league, week, ranking, db.is_postgres, now)
        row.status, row.closed_at = "closed", now
        return row, "closed", ranking, stored


def close_due_weeks(
    db: Database,
    store: LeagueStore | None,
    now: datetime,
    grace: timedelta,
    tenant_id: int | None = None,
) -> CloseReport:
    """Close every week that ended ``grace`` ago, then join players waiting for the new week."""
    report = CloseReport()
    closed: list[LeagueWeek] = []
    while (step := close_step(db, now, grace, tenant_id)) is not None:
        row, status, ranking, (events, messages) = step
        report.events += events
        report.messages += messages
        if status == "promoted":
            report.promoted += ranking.promoted
            report.demoted += ranking.demoted
        else:
            report.results += ranking.members
            report.weeks_closed.append((row.league_id, row.week))
            closed.append(row)
    if store is not None:
        for row in closed:
            report.joined_late += rebuild_current(db, store, row.tenant_id, now, row.league_id)
    return report


# --- rebuild (reconcile) --------------------------------------------------------------------


def rebuild_current(
    db: Database,
    store: LeagueStore,
    tenant_id: int,
    now: datetime,
    league_id: int | None = None,
) -> int:
    """Make the current week's cohorts and standings, and the current day/week/month boards,
    exactly what the ledger says. Joins players the step missed; returns how many joined."""
    joined = 0
    cohorts: dict[int, dict[int, int]] = {}
    with db.session() as session:
        zone = tenant_zone(session, tenant_id)
        windows = {kind: window(kind, now, zone) for kind in WINDOW_KINDS}
        week = windows["week"]
        for league in enabled_leagues(session, tenant_id):
            if league_id is not None and league.id != league_id:
                continue
            xp = league_xp(session, league, week)
            if not previous_week_open(session, league, week, zone):
                missed = unseated(session, league, week)
                joined += len(join(session, league, week, missed, db.is_postgres))
            seats = memberships(session, league, week.key)
            for cohort in set(seats.values()):
                cohorts.setdefault(cohort, {})
            for pid, cohort in seats.items():
                if xp.get(pid, 0) > 0:
                    cohorts[cohort][pid] = xp[pid]
        sums = windowed_xp(session, tenant_id, None, windows) if league_id is None else None
        if sums is not None:
            groups = groups_of(session, tenant_id)
            for boards in sums.values():
                boards.update(group_boards(boards.get("tenant", {}), groups))
    store.replace_cohorts(tenant_id, cohorts)
    if sums is not None:
        for kind, boards in sums.items():
            store.replace_window(tenant_id, kind, windows[kind].key, boards)
    return joined


def close_weeks_now(ctx: Context) -> CloseReport | None:
    """The scheduler's duty: close due weeks. Errors are logged and retried next tick."""
    try:
        store = LeagueStore(ctx.redis, ctx.settings.redis_prefix)
        grace = timedelta(seconds=ctx.settings.league_close_grace_seconds)
        report = close_due_weeks(ctx.db, store, datetime.now(UTC), grace)
    except Exception:
        log.error("league week close failed; the scheduler retries", exc_info=True)
        return None
    if report.events:
        ctx.dispatcher.wake()  # the league.finished events wait in the inbox for the rules
    if report.weeks_closed:
        log.info(
            "league weeks closed",
            extra={
                "weeks": len(report.weeks_closed),
                "promoted": report.promoted,
                "demoted": report.demoted,
                "joined_late": report.joined_late,
                "events": report.events,
            },
        )
    return report
