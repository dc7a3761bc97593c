"""League rewards by rule: the close emits ``league.finished`` events that the rules engine pays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from engine.events import Actor, parse_event
from engine.leagues import Result as EngineResult
from engine.leagues import week_window
from questline.league_models import League, LeagueMembership, LeaguePlayer, LeagueResult
from questline.league_repo import league_config
from questline.league_rewards import finished_event
from questline.leagues import LeagueStore
from questline.models import InboxEvent, Player, XpLedger
from tests.conftest import new_tenant
from tests.leagues.helpers import add_xp, enable_league, make_players
from workers.context import Context
from workers.leagues import apply_step, close_due_weeks, close_weeks_now
from workers.rulesets import store_version

REWARDS = {
    "version": 2,
    "xp": [
        {
            "id": "promoted-bonus",
            "on": "league.finished",
            "when": {"object_type": "promoted"},
            "points": 50,
        },
        {"id": "winner", "on": "league.finished", "when": {"score_at_least": 1.0}, "points": 7},
    ],
}


def last_week_league(ctx: Context) -> dict[str, Any]:
    """Five Silver players with XP last week (real clock), a streak that holds that day."""
    db = ctx.db
    tenant = new_tenant(db)
    with db.session() as session:
        store_version(session, tenant.id, REWARDS, course=None, actor="test")
    league_id = enable_league(db, tenant.id)
    players = make_players(db, tenant.id, 5)
    week = week_window(datetime.now(UTC) - timedelta(days=7), "UTC")
    at = week.start + timedelta(days=2, hours=10)
    with db.session() as session:
        for pid in players:
            session.add(
                LeaguePlayer(league_id=league_id, player_id=pid, tenant_id=tenant.id, tier=1)
            )
        session.execute(
            update(Player)
            .where(Player.id.in_(players))
            .values(streak_current=3, streak_longest=3, last_active_day=at.date().isoformat())
        )
    add_xp(db, tenant.id, {p: 10 * (i + 1) for i, p in enumerate(players)}, at)
    apply_step(db, LeagueStore(ctx.redis, ctx.settings.redis_prefix), {tenant.id: set(players)}, at)
    return {"tenant": tenant.id, "league": league_id, "players": players, "week": week, "at": at}


def finished_events(ctx: Context, tenant_id: int) -> list[InboxEvent]:
    with ctx.db.sessions() as session:
        rows = session.scalars(
            select(InboxEvent)
            .where(InboxEvent.tenant_id == tenant_id, InboxEvent.source == "league")
            .order_by(InboxEvent.event_key)
        ).all()
        session.expunge_all()
        return list(rows)


def test_close_emits_one_league_finished_event_per_member_once(ctx: Context) -> None:
    s = last_week_league(ctx)
    store = None
    report = close_due_weeks(ctx.db, store, datetime.now(UTC), timedelta(minutes=5), s["tenant"])
    assert report.events == 5
    events = finished_events(ctx, s["tenant"])
    assert [e.event_type for e in events] == ["league.finished"] * 5
    by_actor = {e.canonical["actor"]["id"]: e.canonical for e in events}
    top = by_actor[f"a{s['players'][4]}"]
    assert top["object"] == {"id": f"tenant:{s['week'].key}", "type": "promoted"}
    assert top["result"] == {"score": 1.0, "passed": True}
    assert top["extensions"]["tier"] == "Silver" and top["extensions"]["next_tier"] == "Gold"
    assert top["extensions"]["rank"] == 1 and top["extensions"]["cohort_members"] == 5
    assert datetime.fromisoformat(top["occurred_at"]) == s["at"]  # dated at the last activity
    bottom = by_actor[f"a{s['players'][0]}"]
    assert bottom["object"]["type"] == "demoted" and bottom["result"]["score"] == 0.0

    again = close_due_weeks(ctx.db, store, datetime.now(UTC), timedelta(minutes=5), s["tenant"])
    assert again.events == 0 and again.weeks_closed == []
    assert len(finished_events(ctx, s["tenant"])) == 5


def test_rewards_are_paid_by_rule_without_joining_or_streak_days(ctx: Context) -> None:
    s = last_week_league(ctx)
    report = close_weeks_now(ctx)  # wakes the (inline) workers, which run the rules
    assert report is not None and report.events == 5
    p = s["players"]
    with ctx.db.sessions() as session:
        rewards = dict(
            session.execute(
                select(XpLedger.player_id, XpLedger.amount).where(
                    XpLedger.tenant_id == s["tenant"], XpLedger.rule_id == "promoted-bonus"
                )
            ).all()
        )
        winner = session.execute(
            select(XpLedger.player_id, XpLedger.amount).where(
                XpLedger.tenant_id == s["tenant"], XpLedger.rule_id == "winner"
            )
        ).all()
        streaks = dict(
            session.execute(select(Player.id, Player.streak_current).where(Player.id.in_(p))).all()
        )
        joined = session.scalars(
            select(LeagueMembership.player_id).where(
                LeagueMembership.league_id == s["league"],
                LeagueMembership.week != s["week"].key,
            )
        ).all()
        statuses = set(
            session.scalars(
                select(InboxEvent.status).where(
                    InboxEvent.tenant_id == s["tenant"], InboxEvent.source == "league"
                )
            )
        )
    assert rewards == {p[4]: 50, p[3]: 50}  # the two promoted in a 2-up cohort
    assert winner == [(p[4], 7)]
    assert statuses == {"applied"}
    assert streaks == {pid: 3 for pid in p}  # the reward is not a new day of activity
    assert joined == []  # reward XP this week does not join anyone to this week's cohort


def test_postgres_bulk_events_match_the_python_builder(ctx: Context) -> None:
    """The close on PostgreSQL builds events in SQL (league_bulk); SQLite uses
    league_rewards.finished_event. Both must give the same canonical event."""
    s = last_week_league(ctx)
    close_due_weeks(ctx.db, None, datetime.now(UTC), timedelta(minutes=5), s["tenant"])
    with ctx.db.sessions() as session:
        league = session.get(League, s["league"])
        assert league is not None
        config = league_config(league)
        results = session.scalars(
            select(LeagueResult).where(LeagueResult.league_id == s["league"])
        ).all()
        expected = {
            f"{s['league']}:{r.week}:{r.player_id}": finished_event(
                league,
                config,
                r.week,
                r.cohort_id,
                EngineResult(r.player_id, r.rank, r.xp, r.zone, r.outcome, r.tier, r.next_tier),  # type: ignore[arg-type]
                r.cohort_members,
                Actor(id=f"a{r.player_id}"),
                s["at"],
            ).to_dict()
            for r in results
        }
    stored = {e.event_key: dict(e.canonical) for e in finished_events(ctx, s["tenant"])}
    assert len(stored) == 5 and stored.keys() == expected.keys()
    for key, canonical in stored.items():
        want = expected[key]
        assert datetime.fromisoformat(canonical.pop("occurred_at")) == datetime.fromisoformat(
            want.pop("occurred_at")
        )
        assert canonical == want
        assert parse_event(stored_raw(ctx, key)).id == key  # the worker can read it back


def stored_raw(ctx: Context, key: str) -> Any:
    with ctx.db.sessions() as session:
        raw = session.scalar(
            select(InboxEvent.raw).where(InboxEvent.source == "league", InboxEvent.event_key == key)
        )
    return json.loads(raw or "null")


def test_the_reward_rules_in_the_docs_are_valid() -> None:
    from pathlib import Path

    from engine.rules import parse_rules
    from workers.rulesets import read_document

    text = (Path(__file__).resolve().parents[2] / "docs" / "leagues.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    ruleset = parse_rules(read_document("version: 2\n" + block), scope="tenant")
    assert [rule.id for rule in ruleset.rules_for("league.finished")] == [
        "promoted-bonus",
        "podium",
    ]
    assert [badge.id for badge in ruleset.badges] == ["climber"]
