"""Losing Redis (and the step's joins) loses nothing: reconcile rebuilds the week exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from sqlalchemy import delete, select

from engine.leagues import week_window, window
from questline.db import Database
from questline.league_models import LeagueCohort, LeagueMembership
from questline.leagues import LeagueStore
from questline.reconcile import reconcile_leagues
from tests.conftest import REDIS_PREFIX, event, new_tenant
from tests.leagues.helpers import add_xp, cohorts_of, enable_league, make_players
from workers.context import Context
from workers.leagues import apply_step


def lose_redis(client) -> None:
    """Drop this run's keys (other runs share the Redis database, so never FLUSHDB)."""
    keys = list(client.scan_iter(match=f"{REDIS_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)


def test_reconcile_rebuilds_cohorts_and_standings_from_postgres(
    db: Database, ctx: Context, redis_client
) -> None:
    tenant = new_tenant(db, timezone="Asia/Kolkata")
    league_id = enable_league(db, tenant.id, cohort_size=4)
    store = LeagueStore(redis_client, REDIS_PREFIX)
    players = make_players(db, tenant.id, 10)
    now = datetime.now(UTC)
    add_xp(db, tenant.id, {p: 10 + i for i, p in enumerate(players)}, now - timedelta(seconds=5))
    apply_step(db, store, {tenant.id: set(players[:6])}, now)  # the step saw only six
    week = week_window(now, "Asia/Kolkata")
    before = cohorts_of(db, league_id, week.key)
    expected = {c: {p: 10 + players.index(p) for p in members} for c, members in before.items()}
    assert {c: store.cohort_scores(tenant.id, c) for c in before} == expected

    lose_redis(redis_client)  # Redis is lost
    assert all(store.cohort_scores(tenant.id, c) == {} for c in before)
    joined = reconcile_leagues(db, ctx.boards, tenant.id)
    assert joined == {tenant.id: 4}  # the four the step never saw
    after = cohorts_of(db, league_id, week.key)
    assert all(set(before[c]) <= set(after[c]) for c in before)  # nobody moved
    assert sorted(p for m in after.values() for p in m) == players
    assert sorted(len(m) for m in after.values()) == [2, 4, 4]
    for cohort, members in after.items():
        assert store.cohort_scores(tenant.id, cohort) == {p: 10 + players.index(p) for p in members}
    day = window("day", now, "Asia/Kolkata")
    page, total, _ = store.window_page(tenant.id, "day", day.key, "tenant", limit=3)
    assert total == 10 and [xp for _, _, xp in page] == [19, 18, 17]


def test_reconcile_replaces_wrong_scores_and_rebuilds_lost_memberships(
    db: Database, ctx: Context, redis_client
) -> None:
    tenant = new_tenant(db)
    league_id = enable_league(db, tenant.id)
    store = LeagueStore(redis_client, REDIS_PREFIX)
    a, b = make_players(db, tenant.id, 2)
    now = datetime.now(UTC)
    add_xp(db, tenant.id, {a: 7, b: 3}, now - timedelta(seconds=5))
    apply_step(db, store, {tenant.id: {a, b}}, now)
    week = week_window(now, "UTC")
    (cohort,) = cohorts_of(db, league_id, week.key)
    redis_client.zadd(store.cohort_key(tenant.id, cohort), {str(a): 999, "12345": 1})
    with db.session() as session:  # a crash lost the memberships too
        session.execute(delete(LeagueMembership).where(LeagueMembership.league_id == league_id))
        session.execute(delete(LeagueCohort).where(LeagueCohort.league_id == league_id))
    reconcile_leagues(db, ctx.boards, tenant.id)
    (rebuilt,) = cohorts_of(db, league_id, week.key).items()
    assert rebuilt[1] == sorted([a, b])
    assert store.cohort_scores(tenant.id, rebuilt[0]) == {a: 7, b: 3}


def test_pipeline_joins_players_and_the_cli_reconciles(
    ctx: Context, db: Database, redis_client, monkeypatch
) -> None:
    """Events through ingest and the real pipeline land in a cohort; `questline reconcile`
    rebuilds the league after Redis is flushed."""
    from questline import cli as cli_mod
    from questline import create_app

    tenant = new_tenant(db)
    league_id = enable_league(db, tenant.id)
    client = create_app(ctx.settings, context=ctx).test_client()
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = client.post(
        "/api/v1/events",
        json=[event("1", actor="ann", at=at), event("2", actor="bob", at=at)],
        headers=tenant.auth,
    )
    assert response.status_code == 202
    week = week_window(datetime.now(UTC), "UTC")
    (cohort,) = cohorts_of(db, league_id, week.key).items()
    assert len(cohort[1]) == 2
    store = LeagueStore(redis_client, REDIS_PREFIX)
    assert sorted(store.cohort_scores(tenant.id, cohort[0]).values()) == [10, 10]
    lose_redis(redis_client)
    monkeypatch.setattr("workers.context.build_context", lambda settings: ctx)
    result = CliRunner().invoke(cli_mod.main, ["reconcile", "--tenant", str(tenant.id)])
    assert result.exit_code == 0, result.output
    assert "leagues: current week rebuilt" in result.output
    assert sorted(store.cohort_scores(tenant.id, cohort[0]).values()) == [10, 10]
    with db.sessions() as session:
        assert (
            session.scalar(
                select(LeagueMembership.cohort_id).where(LeagueMembership.league_id == league_id)
            )
            == cohort[0]
        )
