"""League standings, history, windowed boards and preferences over HTTP; tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from questline import create_app
from questline.db import Database
from questline.leagues import LeagueStore
from questline.settings import Settings
from tests.conftest import REDIS_PREFIX, TenantHandle, dead_redis, event, make_context
from tests.leagues.helpers import add_xp, enable_league, make_players
from workers.leagues import apply_step, close_due_weeks


def post(client: FlaskClient, tenant: TenantHandle, *items: dict) -> None:
    response = client.post("/api/v1/events", json=list(items), headers=tenant.auth)
    assert response.status_code == 202, response.get_json()


def player_id(client: FlaskClient, tenant: TenantHandle, actor: str) -> int:
    response = client.get(f"/api/v1/players?actor={actor}", headers=tenant.auth)
    return int(response.get_json()["players"][0]["id"])


def turn_on(client: FlaskClient, tenant: TenantHandle, **body: object) -> dict:
    response = client.put("/api/v1/leagues/config", json=body, headers=tenant.auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_config_defaults_and_validation(client: FlaskClient, tenant: TenantHandle) -> None:
    config = turn_on(client, tenant)
    assert config["league"] == "tenant" and config["cohort_size"] == 30
    assert config["tiers"][0] == "Bronze" and len(config["tiers"]) == 10
    changed = turn_on(client, tenant, cohort_size=12)
    assert changed["cohort_size"] == 12 and len(changed["tiers"]) == 10
    for bad in ({"cohort_size": 1}, {"tiers": []}, {"league": "group x"}, {"enabled": "yes"}):
        response = client.put("/api/v1/leagues/config", json=bad, headers=tenant.auth)
        assert response.status_code == 422, bad
    listed = client.get("/api/v1/leagues/config", headers=tenant.auth).get_json()
    assert [lg["league"] for lg in listed["leagues"]] == ["tenant"]


def test_standings_show_zones_my_place_and_time_left(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    turn_on(client, tenant, tiers=["Bronze", "Silver"], cohort_size=5, promote=1, demote=1)
    at = now_iso()
    post(
        client,
        tenant,
        event("1", actor="ann", type="course.completed", at=at),
        event("2", actor="bob", at=at),
        event("3", actor="cy", at=at),
        event("4", actor="cy", at=at, object={"id": "other", "type": "lesson"}),
    )
    ann, bob = player_id(client, tenant, "ann"), player_id(client, tenant, "bob")
    data = client.get(f"/api/v1/leagues/standings?player={bob}", headers=tenant.auth).get_json()
    assert data["joined"] is True and data["tier"] == "Bronze" and data["source"] == "redis"
    assert 0 < data["time_left_seconds"] <= 7 * 86400 + 3600
    assert [e["display_name"] for e in data["entries"]] == ["Ann", "Cy", "Bob"]
    assert [e["rank"] for e in data["entries"]] == [1, 2, 3]
    assert data["entries"][0]["player_id"] == ann and data["entries"][0]["zone"] == "promotion"
    assert data["me"] == {"rank": 3, "xp": 10, "zone": "safe"}  # Bronze never demotes
    assert data["entries"][2]["me"] is True

    hidden = client.get(
        f"/api/v1/leagues/standings?player={bob}&anonymise=1", headers=tenant.auth
    ).get_json()
    names = [(e["player_id"], e["display_name"]) for e in hidden["entries"]]
    assert names[:2] == [(None, "Anonymous learner")] * 2 and names[2] == (bob, "Bob")


def test_opted_out_players_are_hidden_from_others(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    turn_on(client, tenant)
    at = now_iso()
    post(client, tenant, event("1", actor="ann", at=at), event("2", actor="bob", at=at))
    ann, bob = player_id(client, tenant, "ann"), player_id(client, tenant, "bob")
    response = client.put(
        f"/api/v1/players/{bob}/board-preference", json={"opt_out": True}, headers=tenant.auth
    )
    assert response.status_code == 200
    seen_by_ann = client.get(
        f"/api/v1/leagues/standings?player={ann}", headers=tenant.auth
    ).get_json()
    assert bob not in [e["player_id"] for e in seen_by_ann["entries"]]
    assert "Anonymous learner" in [e["display_name"] for e in seen_by_ann["entries"]]
    board = client.get(f"/api/v1/boards/week/tenant?player={ann}", headers=tenant.auth).get_json()
    assert bob not in [e["player_id"] for e in board["entries"]] and board["total"] == 2
    seen_by_bob = client.get(
        f"/api/v1/leagues/standings?player={bob}", headers=tenant.auth
    ).get_json()
    assert bob in [e["player_id"] for e in seen_by_bob["entries"]]
    bad = client.put(
        f"/api/v1/players/{bob}/board-preference", json={"opt_out": "y"}, headers=tenant.auth
    )
    assert bad.status_code == 422


def test_player_without_xp_this_week_has_not_joined(
    client: FlaskClient, tenant: TenantHandle, db: Database
) -> None:
    turn_on(client, tenant)
    (pid,) = make_players(db, tenant.id, 1)
    data = client.get(f"/api/v1/leagues/standings?player={pid}", headers=tenant.auth).get_json()
    assert data["joined"] is False and data["time_left_seconds"] > 0


def test_tenants_cannot_read_each_other(
    client: FlaskClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    turn_on(client, tenant)
    post(client, tenant, event("1", actor="ann", at=now_iso()))
    ann = player_id(client, tenant, "ann")
    turn_on(client, other_tenant)
    for path in (
        f"/api/v1/leagues/standings?player={ann}",
        f"/api/v1/leagues/history?player={ann}",
        f"/api/v1/boards/week/tenant?around={ann}",
    ):
        assert client.get(path, headers=other_tenant.auth).status_code == 404, path
    put = client.put(
        f"/api/v1/players/{ann}/board-preference",
        json={"opt_out": True},
        headers=other_tenant.auth,
    )
    assert put.status_code == 404
    board = client.get("/api/v1/boards/week/tenant", headers=other_tenant.auth).get_json()
    assert board["entries"] == []
    turn_on(client, tenant, cohort_size=12)
    theirs = client.get("/api/v1/leagues/config", headers=other_tenant.auth).get_json()
    assert [(lg["league"], lg["cohort_size"]) for lg in theirs["leagues"]] == [("tenant", 30)]


def test_bad_requests_are_4xx(client: FlaskClient, tenant: TenantHandle) -> None:
    assert client.get("/api/v1/leagues/standings", headers=tenant.auth).status_code == 400
    assert client.get("/api/v1/leagues/standings?player=x", headers=tenant.auth).status_code == 400
    assert client.get("/api/v1/leagues/standings?player=1").status_code == 401
    assert client.get("/api/v1/boards/year/tenant", headers=tenant.auth).status_code == 404
    assert client.get("/api/v1/boards/week/bogus", headers=tenant.auth).status_code == 404
    off = client.get("/api/v1/leagues/standings?player=1&league=course:x", headers=tenant.auth)
    assert off.status_code == 404


def test_history_lists_finished_weeks(
    client: FlaskClient, tenant: TenantHandle, db: Database, redis_client
) -> None:
    league = enable_league(db, tenant.id, cohort_size=5)
    assert league
    a, b = make_players(db, tenant.id, 2)
    store = LeagueStore(redis_client, REDIS_PREFIX)
    last_week = datetime.now(UTC) - timedelta(days=8)
    add_xp(db, tenant.id, {a: 40, b: 20}, last_week)
    apply_step(db, store, {tenant.id: {a, b}}, last_week)
    close_due_weeks(db, store, datetime.now(UTC), timedelta(minutes=5), tenant.id)
    data = client.get(f"/api/v1/leagues/history?player={b}", headers=tenant.auth).get_json()
    (week,) = data["weeks"]
    assert week["rank"] == 2 and week["outcome"] == "promoted" and week["next_tier"] == "Silver"
    assert week["cohort_members"] == 2 and week["xp"] == 20


def test_weekly_board_ranks_by_this_weeks_xp_not_all_time(
    client: FlaskClient, tenant: TenantHandle, db: Database, redis_client
) -> None:
    store = LeagueStore(redis_client, REDIS_PREFIX)
    veteran, newcomer = make_players(db, tenant.id, 2)
    now = datetime.now(UTC)
    add_xp(db, tenant.id, {veteran: 1000}, now - timedelta(days=40))
    add_xp(db, tenant.id, {veteran: 10, newcomer: 50}, now)
    apply_step(db, store, {tenant.id: {veteran, newcomer}}, now)
    for kind in ("day", "week", "month"):
        data = client.get(f"/api/v1/boards/{kind}/tenant", headers=tenant.auth).get_json()
        assert [(e["player_id"], e["xp"]) for e in data["entries"]] == [
            (newcomer, 50),
            (veteran, 10),
        ], kind
        assert data["period"] is not None and data["window"] == kind


def test_ten_around_me_on_a_weekly_board(
    client: FlaskClient, tenant: TenantHandle, db: Database, redis_client
) -> None:
    store = LeagueStore(redis_client, REDIS_PREFIX)
    players = make_players(db, tenant.id, 40)
    now = datetime.now(UTC)
    add_xp(db, tenant.id, {p: 100 + i for i, p in enumerate(players)}, now)
    apply_step(db, store, {tenant.id: set(players)}, now)
    me = players[19]  # 21st by XP
    data = client.get(
        f"/api/v1/boards/week/tenant?around={me}&limit=10", headers=tenant.auth
    ).get_json()
    assert data["around_rank"] == 21 and data["total"] == 40
    assert [e["rank"] for e in data["entries"]] == list(range(16, 26))
    assert me in [e["player_id"] for e in data["entries"]]
    anon = client.get(
        f"/api/v1/boards/week/tenant?around={me}&anonymise=1", headers=tenant.auth
    ).get_json()
    assert [e["player_id"] for e in anon["entries"] if e["player_id"] is not None] == [me]


def test_reads_degrade_to_the_ledger_when_redis_is_down(
    settings: Settings, db: Database, redis_client, tenant: TenantHandle
) -> None:
    store = LeagueStore(redis_client, REDIS_PREFIX)
    enable_league(db, tenant.id)
    a, b = make_players(db, tenant.id, 2)
    now = datetime.now(UTC)
    add_xp(db, tenant.id, {a: 5, b: 9}, now)
    apply_step(db, store, {tenant.id: {a, b}}, now)
    down = create_app(settings, context=make_context(settings, db, dead_redis())).test_client()
    data = down.get(f"/api/v1/leagues/standings?player={a}", headers=tenant.auth).get_json()
    assert data["degraded"] is True and data["source"] == "database"
    assert [(e["player_id"], e["xp"]) for e in data["entries"]] == [(b, 9), (a, 5)]
    board = down.get(f"/api/v1/boards/week/tenant?around={a}", headers=tenant.auth).get_json()
    assert board["degraded"] is True and board["around_rank"] == 2
