"""The week close: promotion, demotion, history, idempotence, crash resume, racing schedulers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

import workers.leagues as close_mod
from engine.leagues import week_window
from questline.db import Database
from questline.league_models import (
    LeagueMembership,
    LeaguePlayer,
    LeagueResult,
    LeagueWeek,
)
from questline.leagues import LeagueStore
from questline.models import InboxEvent, Tenant
from tests.conftest import REDIS_PREFIX, new_tenant
from tests.leagues.helpers import add_xp, cohorts_of, enable_league, make_players
from workers.leagues import apply_step, close_due_weeks

GRACE = timedelta(minutes=5)
LA = "America/Los_Angeles"
# Wednesday of the LA week that holds the end of daylight saving time (169 hours long).
DST_WEEK = datetime(2026, 10, 28, 18, tzinfo=UTC)


def store(client: Any) -> LeagueStore:
    return LeagueStore(client, REDIS_PREFIX)


def seed_week(db: Database, client: Any, zone: str = LA, at: datetime = DST_WEEK) -> dict[str, Any]:
    """A tenant with a 3-tier league and 5 Silver players who each earned XP this week."""
    tenant = new_tenant(db, timezone=zone)
    league_id = enable_league(db, tenant.id, cohort_size=5, promote=[2, 2, 2], demote=[1, 1, 1])
    players = make_players(db, tenant.id, 5)
    with db.session() as session:
        for pid in players:
            session.add(
                LeaguePlayer(league_id=league_id, player_id=pid, tenant_id=tenant.id, tier=1)
            )
    add_xp(db, tenant.id, {p: 10 * (i + 1) for i, p in enumerate(players)}, at)
    apply_step(db, store(client), {tenant.id: set(players)}, at)
    return {
        "tenant": tenant.id,
        "league": league_id,
        "players": players,  # ascending XP: players[-1] is first
        "week": week_window(at, zone),
    }


def tiers(db: Database, league_id: int) -> dict[int, int]:
    with db.sessions() as session:
        return dict(
            session.execute(
                select(LeaguePlayer.player_id, LeaguePlayer.tier).where(
                    LeaguePlayer.league_id == league_id
                )
            ).all()
        )


def snapshot(db: Database, league_id: int) -> tuple[Any, ...]:
    with db.sessions() as session:
        results = session.execute(
            select(LeagueResult.player_id, LeagueResult.rank, LeagueResult.outcome)
            .where(LeagueResult.league_id == league_id)
            .order_by(LeagueResult.player_id)
        ).all()
        # league.finished inbox events of this league (keys "<league id>:<week>:<player>")
        facts = session.scalar(
            select(func.count())
            .select_from(InboxEvent)
            .where(InboxEvent.source == "league", InboxEvent.event_key.startswith(f"{league_id}:"))
        )
        statuses = session.execute(
            select(LeagueWeek.week, LeagueWeek.status).where(LeagueWeek.league_id == league_id)
        ).all()
    return tuple(results), facts, tuple(statuses), tiers(db, league_id)


def test_week_closes_after_its_end_in_the_tenant_zone(db: Database, redis_client) -> None:
    s = seed_week(db, redis_client)
    week = s["week"]
    assert week.end - week.start == timedelta(hours=169)  # the DST week
    early = close_due_weeks(db, store(redis_client), week.end + timedelta(minutes=1), GRACE)
    assert early.weeks_closed == []
    report = close_due_weeks(db, store(redis_client), week.end + timedelta(minutes=6), GRACE)
    assert report.weeks_closed == [(s["league"], week.key)]
    assert (report.promoted, report.demoted, report.results) == (2, 1, 5)
    p = s["players"]
    assert tiers(db, s["league"]) == {p[0]: 0, p[1]: 1, p[2]: 1, p[3]: 2, p[4]: 2}
    with db.sessions() as session:
        rows = {
            r.player_id: r
            for r in session.scalars(
                select(LeagueResult).where(LeagueResult.league_id == s["league"])
            )
        }
        fact = session.scalar(
            select(InboxEvent).where(
                InboxEvent.source == "league", InboxEvent.event_key.endswith(f":{p[4]}")
            )
        )
    assert rows[p[4]].rank == 1 and rows[p[4]].zone == "promotion" and rows[p[4]].xp == 50
    assert rows[p[0]].outcome == "demoted" and rows[p[0]].next_tier == 0
    assert rows[p[2]].outcome == "stayed" and rows[p[2]].cohort_members == 5
    assert fact is not None and fact.event_type == "league.finished"
    assert fact.canonical["extensions"]["tier"] == "Silver"
    assert fact.canonical["extensions"]["next_tier"] == "Gold"


def test_running_the_close_twice_changes_nothing(db: Database, redis_client) -> None:
    s = seed_week(db, redis_client)
    after = s["week"].end + timedelta(hours=1)
    close_due_weeks(db, store(redis_client), after, GRACE)
    first = snapshot(db, s["league"])
    second_report = close_due_weeks(db, store(redis_client), after, GRACE)
    assert second_report.weeks_closed == []
    assert snapshot(db, s["league"]) == first
    # Even forcing the week open again re-derives the same results and does not move tiers twice.
    with db.session() as session:
        week = session.scalar(select(LeagueWeek).where(LeagueWeek.league_id == s["league"]))
        assert week is not None
        week.status = "open"
    close_due_weeks(db, store(redis_client), after, GRACE)
    assert snapshot(db, s["league"]) == first


def test_crash_between_promotion_and_history_resumes(
    db: Database, redis_client, monkeypatch
) -> None:
    s = seed_week(db, redis_client)
    after = s["week"].end + timedelta(hours=1)
    real = close_mod._write_history

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected crash before the history write")

    monkeypatch.setattr(close_mod, "_write_history", crash)
    with pytest.raises(RuntimeError, match="injected"):
        close_due_weeks(db, store(redis_client), after, GRACE)
    results, facts, statuses, moved = snapshot(db, s["league"])
    assert statuses == ((s["week"].key, "promoted"),)
    assert results == () and facts == 0
    p = s["players"]
    assert moved[p[4]] == 2 and moved[p[0]] == 0  # promotion committed

    monkeypatch.setattr(close_mod, "_write_history", real)
    report = close_due_weeks(db, store(redis_client), after, GRACE)
    assert report.weeks_closed == [(s["league"], s["week"].key)]
    results, facts, statuses, resumed = snapshot(db, s["league"])
    assert statuses == ((s["week"].key, "closed"),)
    assert len(results) == 5 and facts == 5
    assert resumed == moved  # nobody promoted twice
    outcomes = {pid: outcome for pid, _rank, outcome in results}
    assert outcomes[p[4]] == "promoted" and outcomes[p[0]] == "demoted"


def test_inactive_players_leave_until_they_return(db: Database, redis_client) -> None:
    s = seed_week(db, redis_client)
    p = s["players"]
    add_xp(db, s["tenant"], {p[1]: -20}, s["week"].start + timedelta(days=3))  # XP reversed
    after = s["week"].end + timedelta(hours=1)
    close_due_weeks(db, store(redis_client), after, GRACE)
    with db.sessions() as session:
        outcome = session.scalar(select(LeagueResult.outcome).where(LeagueResult.player_id == p[1]))
    assert outcome == "left"
    # Next week only p[2] plays: nobody else has a cohort, and p[0] keeps the tier it earned.
    next_week = week_window(after, LA)
    add_xp(db, s["tenant"], {p[2]: 5}, after + timedelta(hours=1))
    apply_step(db, store(redis_client), {s["tenant"]: {p[2]}}, after + timedelta(hours=1))
    assert list(cohorts_of(db, s["league"], next_week.key).values()) == [[p[2]]]
    # p[0] returns two days later and joins at Bronze, where the close put it.
    add_xp(db, s["tenant"], {p[0]: 5}, after + timedelta(days=2))
    apply_step(db, store(redis_client), {s["tenant"]: {p[0]}}, after + timedelta(days=2))
    with db.sessions() as session:
        tier = session.scalar(
            select(LeagueMembership.tier).where(
                LeagueMembership.player_id == p[0], LeagueMembership.week == next_week.key
            )
        )
    assert tier == 0


def test_joins_wait_for_the_close_then_start_at_the_new_tier(db: Database, redis_client) -> None:
    s = seed_week(db, redis_client)
    p = s["players"]
    early = s["week"].end + timedelta(minutes=2)  # new week, old one not closed yet
    add_xp(db, s["tenant"], {p[4]: 7}, early)
    report = apply_step(db, store(redis_client), {s["tenant"]: {p[4]}}, early)
    assert report.deferred == 1
    next_week = week_window(early, LA)
    assert cohorts_of(db, s["league"], next_week.key) == {}
    closed = close_due_weeks(db, store(redis_client), early + GRACE, GRACE)
    assert closed.joined_late == 1
    with db.sessions() as session:
        tier = session.scalar(
            select(LeagueMembership.tier).where(
                LeagueMembership.player_id == p[4], LeagueMembership.week == next_week.key
            )
        )
    assert tier == 2  # promoted to Gold before joining
    cohort = next(iter(cohorts_of(db, s["league"], next_week.key)))
    assert store(redis_client).cohort_scores(s["tenant"], cohort) == {p[4]: 7}


def test_late_award_in_the_last_minute_is_joined_by_the_close(db: Database, redis_client) -> None:
    s = seed_week(db, redis_client)
    (late,) = make_players(db, s["tenant"], 1)
    add_xp(db, s["tenant"], {late: 999}, s["week"].end - timedelta(seconds=1))
    close_due_weeks(db, store(redis_client), s["week"].end + GRACE, GRACE)
    with db.sessions() as session:
        row = session.scalar(select(LeagueResult).where(LeagueResult.player_id == late))
    assert row is not None and row.rank == 1 and row.tier == 0 and row.outcome == "promoted"


def test_kolkata_and_los_angeles_weeks_close_at_their_own_midnight(
    db: Database, redis_client
) -> None:
    at = datetime(2026, 11, 18, 12, tzinfo=UTC)
    india = seed_week(db, redis_client, "Asia/Kolkata", at)
    america = seed_week(db, redis_client, LA, at)
    india_end = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)  # Monday 00:00 IST
    america_end = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 00:00 PST
    assert india["week"].end == india_end and america["week"].end == america_end
    first = close_due_weeks(db, store(redis_client), india_end + GRACE, GRACE)
    assert first.weeks_closed == [(india["league"], "2026-11-16")]
    second = close_due_weeks(db, store(redis_client), america_end + GRACE, GRACE)
    assert second.weeks_closed == [(america["league"], "2026-11-16")]


def test_two_schedulers_racing_close_each_week_once(
    committed_db: Database, redis_client, monkeypatch
) -> None:
    db = committed_db
    s = seed_week(db, redis_client)
    calls = {"promote": 0, "history": 0}
    real_promote, real_history = close_mod._promote, close_mod._write_history
    lock = threading.Lock()

    def promote(*args: Any, **kwargs: Any) -> None:
        with lock:
            calls["promote"] += 1
        real_promote(*args, **kwargs)

    def history(*args: Any, **kwargs: Any) -> tuple[int, int]:
        with lock:
            calls["history"] += 1
        return real_history(*args, **kwargs)

    monkeypatch.setattr(close_mod, "_promote", promote)
    monkeypatch.setattr(close_mod, "_write_history", history)
    try:
        after = s["week"].end + timedelta(hours=1)
        barrier = threading.Barrier(4)
        reports: list[Any] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                barrier.wait()
                reports.append(close_due_weeks(db, store(redis_client), after, GRACE))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert calls == {"promote": 1, "history": 1}
        assert sum(len(r.weeks_closed) for r in reports) == 1
        results, facts, statuses, _ = snapshot(db, s["league"])
        assert len(results) == 5 and facts == 5 and statuses[0][1] == "closed"
    finally:
        with db.session() as session:
            session.execute(delete(Tenant).where(Tenant.id == s["tenant"]))
