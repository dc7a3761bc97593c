"""Standings reads from the Redis cache: no SQL once warm, and never stale on joins or opt-outs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import fakeredis
from sqlalchemy import event
from sqlalchemy.engine import Engine

from questline.db import Database
from questline.league_api import cohort_standings
from questline.leagues import LeagueStore
from tests.conftest import REDIS_PREFIX, new_tenant
from tests.leagues.helpers import add_xp, enable_league, make_players
from workers.leagues import apply_step


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, stmt: str, *args: Any) -> None:
        statements.append(stmt)

    event.listen(Engine, "before_cursor_execute", seen)  # the test db binds a connection
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


def read(db: Database, store: LeagueStore, tenant: int, viewer: int) -> dict[str, Any]:
    with db.sessions() as session:
        return cohort_standings(session, store, tenant, "tenant", viewer, datetime.now(UTC))


def test_a_warm_read_costs_no_sql_and_joins_and_opt_outs_show_at_once(
    db: Database, redis_client: Any
) -> None:
    store = LeagueStore(redis_client, REDIS_PREFIX)
    tenant = new_tenant(db).id
    enable_league(db, tenant, cohort_size=5)
    players = make_players(db, tenant, 4)
    now = datetime.now(UTC)
    add_xp(db, tenant, {p: 10 * (i + 1) for i, p in enumerate(players[:3])}, now)
    apply_step(db, store, {tenant: set(players[:3])}, now)

    with counting(db) as statements:
        cold = read(db, store, tenant, players[0])  # fills the cache from PostgreSQL
    assert len(statements) >= 2  # the league (then cached in the process) and the cohort
    with counting(db) as statements:
        warm = read(db, store, tenant, players[1])
    assert statements == []  # league info cached in the process, cohort from one Lua call
    assert warm["source"] == "redis" and [e["player_id"] for e in warm["entries"]] == [
        players[2],
        players[1],
        players[0],
    ]
    assert {k: v for k, v in warm.items() if k not in {"entries", "me"}} == {
        k: v for k, v in cold.items() if k not in {"entries", "me"}
    }

    # A fourth player joins the same cohort: the step drops the cached member list.
    add_xp(db, tenant, {players[3]: 100}, now)
    apply_step(db, store, {tenant: {players[3]}}, now)
    after_join = read(db, store, tenant, players[0])
    assert after_join["entries"][0]["player_id"] == players[3]
    assert after_join["entries"][0]["display_name"] == "p3"

    # Even if the drop was lost, a set member missing from the metadata forces a fresh read.
    meta_key = store.meta_key(tenant, after_join["cohort_id"])
    redis_client.set(meta_key, redis_client.get(meta_key).replace(b"p3", b"zz"))
    stale = read(db, store, tenant, players[0])
    assert stale["entries"][0]["display_name"] == "zz"  # cached names are served as cached
    redis_client.set(
        meta_key,
        b'{"tier": 0, "members": [[%d, "p0", false]]}' % players[0],
    )
    refreshed = read(db, store, tenant, players[0])
    assert len(refreshed["entries"]) == 4 and refreshed["entries"][0]["display_name"] == "p3"


def test_opting_out_hides_the_player_from_cached_standings(client: Any, tenant: Any) -> None:
    from tests.conftest import event as ev
    from tests.leagues.test_api import now_iso, player_id, post, turn_on

    turn_on(client, tenant, tiers=["Bronze", "Silver"], cohort_size=5, promote=1, demote=1)
    at = now_iso()
    post(client, tenant, ev("1", actor="ann", at=at), ev("2", actor="bob", at=at))
    ann, bob = player_id(client, tenant, "ann"), player_id(client, tenant, "bob")
    url = f"/api/v1/leagues/standings?player={bob}"
    before = client.get(url, headers=tenant.auth).get_json()  # cached now
    assert ann in [e["player_id"] for e in before["entries"]]
    response = client.put(
        f"/api/v1/players/{ann}/board-preference", json={"opt_out": True}, headers=tenant.auth
    )
    assert response.status_code == 200
    after = client.get(url, headers=tenant.auth).get_json()
    assert ann not in [e["player_id"] for e in after["entries"]]
    assert "Anonymous learner" in [e["display_name"] for e in after["entries"]]


def test_redis_without_scripting_reads_the_same_in_two_steps(db: Database) -> None:
    fake = fakeredis.FakeRedis(server=fakeredis.FakeServer())  # no Lua (as embedded)
    store = LeagueStore(fake, "qlt")
    store.remember_cohort(1, 2, "2026-11-23", {10: 7, 11: 7}, 7, {"tier": 1, "members": []})
    pipe = fake.pipeline()
    store.record_cohort(pipe, 1, 7, {10: 30, 11: 5})
    pipe.execute()
    view = store.read_cohort(1, 2, "2026-11-23", 11)
    assert view is not None and view.cohort_id == 7 and view.scores == {10: 30, 11: 5}
    assert view.meta == {"tier": 1, "members": []}
    assert store.read_cohort(1, 2, "2026-11-23", 12) is None
