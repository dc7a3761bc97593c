"""Joins on PostgreSQL plan in one SQL statement (league_repo._JOIN), on SQLite in Python: both
must seat players exactly as engine.leagues.place plans it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from engine.leagues import OpenCohort, place, week_window
from questline.db import Database
from questline.league_models import League, LeagueCohort, LeagueMembership, LeaguePlayer
from questline.league_repo import join
from questline.migrate import upgrade
from tests.conftest import new_tenant
from tests.leagues.helpers import enable_league, make_players
from tests.leagues.test_joins import MON

SIZE = 6


def _scenario(db: Database, seed: int) -> tuple[int, list[int], dict[int, int], dict[int, int]]:
    """A league with open cohorts of uneven fill in three of four tiers, and joiners whose tiers
    are known (some new: tier 0). Returns (league, joiners, {open cohort: size}, {cohort: tier})."""
    rng = random.Random(seed)
    tenant = new_tenant(db)
    league_id = enable_league(
        db, tenant.id, tiers=["A", "B", "C", "D"], cohort_size=SIZE, promote=1, demote=1
    )
    seated = make_players(db, tenant.id, 40, prefix="s")
    joiners = make_players(db, tenant.id, 45, prefix="j")
    week = week_window(MON, "UTC").key
    sizes: dict[int, int] = {}
    tiers: dict[int, int] = {}
    with db.session() as session:
        pool = iter(seated)
        for tier in (0, 1, 3):
            for _ in range(rng.randint(1, 3)):
                size = rng.randint(1, SIZE - 1)
                cid = session.scalar(
                    insert(LeagueCohort)
                    .values(
                        tenant_id=tenant.id, league_id=league_id, week=week, tier=tier, size=size
                    )
                    .returning(LeagueCohort.id)
                )
                assert cid is not None
                sizes[cid], tiers[cid] = size, tier
                for _ in range(size):
                    session.add(
                        LeagueMembership(
                            tenant_id=tenant.id,
                            league_id=league_id,
                            week=week,
                            player_id=next(pool),
                            cohort_id=cid,
                            tier=tier,
                        )
                    )
        for pid in joiners:
            if rng.random() < 0.8:  # the rest play for the first time: tier 0
                session.add(
                    LeaguePlayer(
                        league_id=league_id,
                        player_id=pid,
                        tenant_id=tenant.id,
                        tier=rng.randrange(4),
                    )
                )
    return league_id, joiners, sizes, tiers


def _check(db: Database, seed: int) -> None:
    league_id, joiners, sizes, tiers = _scenario(db, seed)
    week = week_window(MON, "UTC")
    with db.session() as session:
        league = session.get(League, league_id)
        assert league is not None
        tier_of = {pid: 0 for pid in joiners} | dict(
            session.execute(
                select(LeaguePlayer.player_id, LeaguePlayer.tier).where(
                    LeaguePlayer.league_id == league_id
                )
            ).all()
        )
        seated = join(session, league, week, joiners, db.is_postgres)
    assert seated.keys() == set(joiners)
    for tier in range(4):
        players = sorted(p for p in joiners if tier_of[p] == tier)
        opened = [OpenCohort(c, s) for c, s in sizes.items() if tiers[c] == tier]
        plan = place(opened, len(players), SIZE)
        at = 0
        for cohort_id, n in plan.existing:
            assert {p for p in players[at : at + n]} == {
                p for p in players if seated[p] == cohort_id
            }
            at += n
        for n in plan.new:
            group = players[at : at + n]
            assert len({seated[p] for p in group}) == 1  # one new cohort per planned group
            cohort = seated[group[0]]
            assert cohort not in sizes
            assert sorted(p for p in players if seated[p] == cohort) == group
            at += n
    with db.sessions() as session:
        stored = dict(
            session.execute(
                select(LeagueCohort.id, LeagueCohort.size).where(
                    LeagueCohort.league_id == league_id
                )
            ).all()
        )
        counted: dict[int, int] = {}
        for cid in session.scalars(
            select(LeagueMembership.cohort_id).where(LeagueMembership.league_id == league_id)
        ):
            counted[cid] = counted.get(cid, 0) + 1
    assert stored == counted and max(stored.values()) <= SIZE


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_postgres_placement_is_the_engines_plan(db: Database, seed: int) -> None:
    _check(db, seed)


def test_sqlite_placement_is_the_engines_plan(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'leagues.db'}"
    upgrade(url)
    database = Database(url)
    try:
        _check(database, 4)
    finally:
        database.dispose()
