"""Joining at the first XP of the week, filling open cohorts, concurrency on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import delete, func, select

from engine.leagues import week_window
from questline.db import Database
from questline.league_models import LeagueCohort, LeagueMembership, LeaguePlayer
from questline.league_repo import join, league_by_scope
from questline.leagues import LeagueStore
from questline.models import Tenant
from tests.conftest import REDIS_PREFIX, new_tenant
from tests.leagues.helpers import add_xp, cohorts_of, enable_league, make_players
from workers.leagues import apply_step

MON = datetime(2026, 11, 16, 12, tzinfo=UTC)  # a Monday, mid-day UTC


def store(client: redis.Redis) -> LeagueStore:
    return LeagueStore(client, REDIS_PREFIX)


def test_player_joins_at_first_xp_of_the_week_not_before(db: Database, redis_client) -> None:
    tenant = new_tenant(db)
    league_id = enable_league(db, tenant.id)
    a, b = make_players(db, tenant.id, 2)
    week = week_window(MON, "UTC")
    # b registered but earned nothing: no cohort for b.
    add_xp(db, tenant.id, {a: 30}, MON)
    report = apply_step(db, store(redis_client), {tenant.id: {a, b}}, MON + timedelta(minutes=1))
    assert report.joined == 1
    assert cohorts_of(db, league_id, week.key) == {
        next(iter(cohorts_of(db, league_id, week.key))): [a]
    }
    # Standings in Redis hold the week's XP.
    cohort = next(iter(cohorts_of(db, league_id, week.key)))
    assert store(redis_client).cohort_scores(tenant.id, cohort) == {a: 30}
    # More XP later in the week: same cohort, absolute total.
    add_xp(db, tenant.id, {a: 12}, MON + timedelta(days=2))
    again = apply_step(db, store(redis_client), {tenant.id: {a}}, MON + timedelta(days=2, hours=1))
    assert again.joined == 0
    assert store(redis_client).cohort_scores(tenant.id, cohort) == {a: 42}


def test_xp_from_last_week_does_not_count_this_week(db: Database, redis_client) -> None:
    tenant = new_tenant(db)
    league_id = enable_league(db, tenant.id)
    (a,) = make_players(db, tenant.id, 1)
    add_xp(db, tenant.id, {a: 100}, MON - timedelta(days=2))  # previous week
    apply_step(db, store(redis_client), {tenant.id: {a}}, MON)
    assert cohorts_of(db, league_id, week_window(MON, "UTC").key) == {}


def test_joiners_fill_the_open_cohort_first(db: Database, redis_client) -> None:
    tenant = new_tenant(db)
    league_id = enable_league(db, tenant.id, cohort_size=5)
    players = make_players(db, tenant.id, 12)
    week = week_window(MON, "UTC")
    for i, chunk in enumerate([players[:3], players[3:4], players[4:12]]):
        at = MON + timedelta(hours=i)
        add_xp(db, tenant.id, dict.fromkeys(chunk, 10), at)
        apply_step(db, store(redis_client), {tenant.id: set(chunk)}, at)
    sizes = sorted(len(p) for p in cohorts_of(db, league_id, week.key).values())
    assert sizes == [2, 5, 5]
    with db.sessions() as session:
        stored = sorted(
            session.scalars(select(LeagueCohort.size).where(LeagueCohort.league_id == league_id))
        )
    assert stored == [2, 5, 5]


def test_players_join_in_their_tier(db: Database, redis_client) -> None:
    tenant = new_tenant(db)
    league_id = enable_league(db, tenant.id)
    a, b = make_players(db, tenant.id, 2)
    with db.session() as session:
        session.add(LeaguePlayer(league_id=league_id, player_id=b, tenant_id=tenant.id, tier=2))
    add_xp(db, tenant.id, {a: 5, b: 5}, MON)
    apply_step(db, store(redis_client), {tenant.id: {a, b}}, MON)
    with db.sessions() as session:
        tiers = dict(
            session.execute(select(LeagueMembership.player_id, LeagueMembership.tier)).all()
        )
    assert tiers[a] == 0 and tiers[b] == 2
    assert len(cohorts_of(db, league_id, week_window(MON, "UTC").key)) == 2


def test_course_league_counts_only_that_course(db: Database, redis_client) -> None:
    tenant = new_tenant(db)
    league_id = enable_league(db, tenant.id, scope="course:math")
    a, b = make_players(db, tenant.id, 2)
    add_xp(db, tenant.id, {a: 10}, MON, course="math")
    add_xp(db, tenant.id, {b: 99}, MON, course="art")
    apply_step(db, store(redis_client), {tenant.id: {a, b}}, MON)
    assert list(cohorts_of(db, league_id, week_window(MON, "UTC").key).values()) == [[a]]


def test_week_boundary_in_kolkata_starts_a_new_cohort(db: Database, redis_client) -> None:
    tenant = new_tenant(db, timezone="Asia/Kolkata")
    league_id = enable_league(db, tenant.id)
    (a,) = make_players(db, tenant.id, 1)
    sunday_night = datetime(2026, 11, 22, 18, 29, tzinfo=UTC)  # 23:59 IST
    add_xp(db, tenant.id, {a: 10}, sunday_night)
    apply_step(db, store(redis_client), {tenant.id: {a}}, sunday_night)
    monday = datetime(2026, 11, 22, 18, 31, tzinfo=UTC)  # 00:01 IST, still Sunday in UTC
    add_xp(db, tenant.id, {a: 3}, monday)
    apply_step(db, store(redis_client), {tenant.id: {a}}, monday)
    old = cohorts_of(db, league_id, "2026-11-16")
    assert list(old.values()) == [[a]]
    # Last week is not closed yet, so the new week's join waits for the close job.
    assert cohorts_of(db, league_id, "2026-11-23") == {}
    assert store(redis_client).cohort_scores(tenant.id, next(iter(old))) == {a: 10}


def test_two_workers_never_overfill_a_cohort(committed_db: Database, redis_server) -> None:
    """Threads joining disjoint players of one tier at once: every cohort at most full, and
    at most one cohort not full."""
    db = committed_db
    tenant = new_tenant(db)
    try:
        league_id = enable_league(db, tenant.id, cohort_size=7)
        players = make_players(db, tenant.id, 120)
        week = week_window(MON, "UTC")
        with db.sessions() as session:
            league = league_by_scope(session, tenant.id, "tenant")
        assert league is not None
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def work(chunk: list[int]) -> None:
            try:
                barrier.wait()
                for i in range(0, len(chunk), 3):
                    with db.session() as session:
                        join(session, league, week, chunk[i : i + 3], True)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(players[i::6],)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        cohorts = cohorts_of(db, league_id, week.key)
        sizes = sorted(len(p) for p in cohorts.values())
        assert sum(sizes) == 120
        assert max(sizes) <= 7
        assert sum(1 for s in sizes if s < 7) <= 1
        with db.sessions() as session:
            stored = dict(
                session.execute(
                    select(LeagueCohort.id, LeagueCohort.size).where(
                        LeagueCohort.league_id == league_id
                    )
                ).all()
            )
        assert stored == {c: len(p) for c, p in cohorts.items()}
    finally:
        with db.session() as session:
            session.execute(delete(Tenant).where(Tenant.id == tenant.id))


def test_same_player_joined_by_two_workers_is_placed_once(committed_db: Database) -> None:
    db = committed_db
    tenant = new_tenant(db)
    try:
        enable_league(db, tenant.id)
        players = make_players(db, tenant.id, 10)
        week = week_window(MON, "UTC")
        with db.sessions() as session:
            league = league_by_scope(session, tenant.id, "tenant")
        assert league is not None
        barrier = threading.Barrier(4)

        def work() -> None:
            barrier.wait()
            with db.session() as session:
                join(session, league, week, players, True)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with db.sessions() as session:
            count = session.scalar(
                select(func.count())
                .select_from(LeagueMembership)
                .where(LeagueMembership.tenant_id == tenant.id)
            )
            total = session.scalar(
                select(func.sum(LeagueCohort.size)).where(LeagueCohort.tenant_id == tenant.id)
            )
        assert count == 10 and total == 10
    finally:
        with db.session() as session:
            session.execute(delete(Tenant).where(Tenant.id == tenant.id))


def test_a_large_join_goes_in_slices_and_still_fills_cohorts(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconcile can seat a whole week at once; it must never exceed the parameter limit."""
    monkeypatch.setattr("questline.league_repo.JOIN_CHUNK", 4)
    tenant = new_tenant(db)
    league_id = enable_league(db, tenant.id, cohort_size=5)
    players = make_players(db, tenant.id, 13)
    week = week_window(MON, "UTC")
    with db.session() as session:
        league = league_by_scope(session, tenant.id, "tenant")
        assert league is not None
        joined = join(session, league, week, players, True)
    assert sorted(joined) == players
    sizes = sorted(len(m) for m in cohorts_of(db, league_id, week.key).values())
    assert sizes == [3, 5, 5]  # filled in order across slices, one open cohort left
