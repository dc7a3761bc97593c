"""The PostgreSQL close ranks in SQL (league_bulk); it must agree with the engine's arithmetic
(engine.leagues.close_cohort, which the SQLite path and the standings use) on every member."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, text

from engine.leagues import week_window
from questline.db import Database
from questline.league_bulk import rank_week
from questline.league_models import League, LeagueCohort, LeagueMembership
from questline.league_repo import REWARD_KEY_PREFIX, league_config
from questline.models import XpLedger
from tests.conftest import new_tenant
from tests.leagues.helpers import add_xp, enable_league, make_players
from workers.leagues import week_results

AT = datetime(2026, 11, 18, 12, tzinfo=UTC)


def test_sql_ranking_matches_the_engine_on_random_cohorts(db: Database) -> None:
    rng = random.Random(44)
    tenant = new_tenant(db)
    # Five tiers with uneven counts: the top never promotes, the bottom never demotes, and
    # cohorts smaller than promote + demote take promotion places first.
    league_id = enable_league(
        db,
        tenant.id,
        tiers=["T0", "T1", "T2", "T3", "T4"],
        cohort_size=8,
        promote=[3, 2, 4, 1, 3],
        demote=[2, 3, 1, 4, 2],
    )
    players = make_players(db, tenant.id, 160)
    week = week_window(AT, "UTC")
    rng.shuffle(players)
    with db.session() as session:
        at = 0
        while at < len(players):
            size, tier = rng.randint(1, 8), rng.randrange(5)
            cohort = session.scalar(
                insert(LeagueCohort)
                .values(
                    tenant_id=tenant.id, league_id=league_id, week=week.key, tier=tier, size=size
                )
                .returning(LeagueCohort.id)
            )
            for pid in players[at : at + size]:
                session.add(
                    LeagueMembership(
                        tenant_id=tenant.id,
                        league_id=league_id,
                        week=week.key,
                        player_id=pid,
                        cohort_id=cohort,
                        tier=tier,
                    )
                )
            at += size
    # XP with many ties, zeros and reversals; some members have no ledger row at all.
    for pid in players:
        if rng.random() < 0.9:
            add_xp(db, tenant.id, {pid: rng.choice([0, 5, 5, 10, 20, 20, 35, -10])}, AT)
    add_xp(db, tenant.id, {players[0]: 15}, AT + timedelta(hours=1))
    # A league reward in the week is not league XP, nor is XP outside the week.
    with db.session() as session:
        session.execute(
            insert(XpLedger).values(
                tenant_id=tenant.id,
                player_id=players[1],
                idempotency_key=REWARD_KEY_PREFIX + "x",
                rule_id="r",
                amount=999,
                explanation="reward",
                occurred_at=AT,
                created_at=AT,
            )
        )
    add_xp(db, tenant.id, {players[2]: 999}, week.end)

    with db.session() as session:
        league = session.get(League, league_id)
        assert league is not None
        expected = {
            r.player_id: (c, r.tier, r.rank, n, r.xp, r.zone, r.outcome, r.next_tier)
            for c, r, n in week_results(session, league, week)
        }
        ranked = rank_week(session, league, league_config(league), week)
        got = {
            int(row[1]): (int(row[0]), *row[2:])
            for row in session.execute(
                text(
                    "SELECT cohort_id, player_id, tier, rank, cohort_members, xp, zone, outcome,"
                    " next_tier FROM tmp_league_close"
                )
            )
        }
    assert len(expected) == 160
    assert got == expected
    outcomes = [v[6] for v in expected.values()]
    assert ranked.members == 160
    assert ranked.promoted == outcomes.count("promoted") > 0
    assert ranked.demoted == outcomes.count("demoted") > 0
    assert "left" in outcomes and "stayed" in outcomes
