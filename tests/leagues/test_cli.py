"""``questline leagues``: enable, show, standings, history and a manual close, on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from engine.leagues import week_window
from questline.cli import main
from questline.db import Database
from questline.league_models import LeaguePlayer
from questline.leagues import LeagueStore
from tests.conftest import REDIS_PREFIX, new_tenant
from tests.leagues.helpers import add_xp, make_players
from workers.context import Context
from workers.leagues import apply_step


@pytest.fixture
def cli(ctx: Context, db: Database, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``questline`` against the test database and Redis (the commands' own wiring)."""
    monkeypatch.setattr("questline.league_cli._database", lambda: db)
    monkeypatch.setattr("workers.context.build_context", lambda settings, db=None: ctx)

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args))

    return run


def test_enable_show_and_refuse_a_bad_config(cli: Any, db: Database) -> None:
    tenant = new_tenant(db, "CLI School")
    done = cli(
        "leagues", "enable", "--tenant", "CLI School", "--tiers", "Bronze,Silver,Gold",
        "--cohort-size", "10", "--promote", "3", "--demote", "0,2,2",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {
        "league": "tenant",
        "enabled": True,
        "tiers": ["Bronze", "Silver", "Gold"],
        "cohort_size": 10,
        "promote": [3, 3, 3],
        "demote": [0, 2, 2],
    }
    course = cli("leagues", "enable", "--tenant", str(tenant.id), "--course", "math-1")
    assert course.exit_code == 0 and json.loads(course.output)["cohort_size"] == 30
    shown = json.loads(cli("leagues", "show", "--tenant", str(tenant.id)).output)
    assert [lg["league"] for lg in shown["leagues"]] == ["tenant", "course:math-1"]

    bad = cli("leagues", "enable", "--tenant", str(tenant.id), "--cohort-size", "1")
    assert bad.exit_code != 0 and "cohort_size must be between 2 and 1000" in bad.output
    unknown = cli("leagues", "show", "--tenant", "nobody")
    assert unknown.exit_code != 0 and "no tenant 'nobody'" in unknown.output


def test_close_then_history_and_standings(cli: Any, db: Database, redis_client: Any) -> None:
    tenant = new_tenant(db)
    enabled = cli("leagues", "enable", "--tenant", str(tenant.id), "--tiers", "A,B,C",
                  "--cohort-size", "5", "--promote", "2", "--demote", "1")  # fmt: skip
    assert enabled.exit_code == 0, enabled.output
    league_id = _league_id(db, tenant.id)
    players = make_players(db, tenant.id, 4)
    with db.session() as session:
        session.add_all(
            LeaguePlayer(league_id=league_id, player_id=p, tenant_id=tenant.id, tier=1)
            for p in players
        )
    at = week_window(datetime.now(UTC) - timedelta(days=7), "UTC").start + timedelta(hours=5)
    add_xp(db, tenant.id, {p: 5 * (i + 1) for i, p in enumerate(players)}, at)
    apply_step(db, LeagueStore(redis_client, REDIS_PREFIX), {tenant.id: set(players)}, at)

    closed = cli("leagues", "close", "--tenant", str(tenant.id), "--grace-seconds", "0")
    assert closed.exit_code == 0, closed.output
    assert "closed 1 weeks: 2 promoted, 1 demoted, 4 results, 4 league.finished" in closed.output
    again = cli("leagues", "close", "--tenant", str(tenant.id))
    assert "closed 0 weeks" in again.output

    top = players[-1]
    history = json.loads(
        cli("leagues", "history", "--tenant", str(tenant.id), "--player", str(top)).output
    )
    assert history["weeks"] == [
        {
            "week": week_window(at, "UTC").key,
            "tier": "B",
            "rank": 1,
            "cohort_members": 4,
            "xp": 20,
            "zone": "promotion",
            "outcome": "promoted",
            "next_tier": "C",
        }
    ]
    standings = cli("leagues", "standings", "--tenant", str(tenant.id), "--player", str(top))
    assert standings.exit_code == 0, standings.output
    body = json.loads(standings.output)
    assert body["joined"] is False and body["time_left_seconds"] > 0
    missing = cli("leagues", "standings", "--tenant", str(tenant.id), "--player", "999999999")
    assert missing.exit_code != 0 and "no player 999999999" in missing.output


def _league_id(db: Database, tenant_id: int) -> int:
    from questline.league_repo import league_by_scope

    with db.sessions() as session:
        league = league_by_scope(session, tenant_id, "tenant")
        assert league is not None
        return league.id
