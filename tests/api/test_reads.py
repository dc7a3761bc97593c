"""Read API: players, lookup by actor, leaderboards; tenants never see each other."""

from __future__ import annotations

from questline.leaderboards import Leaderboards
from tests.conftest import TenantHandle, dead_redis, event


def post(client, tenant: TenantHandle, *items):
    response = client.post("/api/v1/events", json=list(items), headers=tenant.auth)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def find(client, tenant: TenantHandle, actor: str) -> dict:
    response = client.get(f"/api/v1/players?actor={actor}", headers=tenant.auth)
    assert response.status_code == 200, response.get_json()
    (player,) = response.get_json()["players"]
    return player


def test_player_read_gives_xp_level_streak_and_rank(client, tenant: TenantHandle):
    post(
        client,
        tenant,
        event("1", type="course.completed", actor="ann"),
        event("2", type="lesson.completed", actor="ann", at="2026-11-21T09:00:00Z"),
        event("3", type="lesson.completed", actor="bob"),
    )
    ann = find(client, tenant, "ann")
    response = client.get(f"/api/v1/players/{ann['id']}", headers=tenant.auth)
    data = response.get_json()
    assert data["xp"] == 110
    assert data["level"] == 2  # 100 XP reaches level 2; level 3 needs 283
    assert data["next_level_xp"] == 283
    assert data["rank"] == 1
    assert data["streak"] == {"current": 2, "longest": 2, "last_active_day": "2026-11-21"}
    assert data["badges"] == []
    assert data["display_name"] == "Ann"


def test_lookup_by_email_for_an_actor_known_only_by_email(client, tenant: TenantHandle):
    item = event("1")
    item["actor"] = {"email": "Zoe@Example.org"}
    post(client, tenant, item)
    player = find(client, tenant, "zoe@example.org")
    assert player["display_name"] == "zoe"
    assert player["xp"] == 10


def test_unknown_player_and_actor_are_404_and_bad_ids_400(client, tenant: TenantHandle):
    assert client.get("/api/v1/players/999999", headers=tenant.auth).status_code == 404
    assert client.get("/api/v1/players?actor=ghost", headers=tenant.auth).status_code == 404
    assert client.get("/api/v1/players", headers=tenant.auth).status_code == 400
    assert client.get("/api/v1/players/abc", headers=tenant.auth).status_code == 404


def test_leaderboard_top_and_around(client, tenant: TenantHandle):
    # learner-k earns 10 * k XP: ranks are the reverse of k.
    items = [event(f"{k}-{i}", actor=f"p{k:02d}") for k in range(1, 13) for i in range(k)]
    post(client, tenant, *items)
    response = client.get("/api/v1/leaderboards/tenant?limit=3", headers=tenant.auth)
    data = response.get_json()
    assert data["total"] == 12
    assert data["source"] == "redis"
    assert [(e["rank"], e["display_name"], e["xp"]) for e in data["entries"]] == [
        (1, "P12", 120),
        (2, "P11", 110),
        (3, "P10", 100),
    ]
    p05 = find(client, tenant, "p05")
    response = client.get(
        f"/api/v1/leaderboards/tenant?limit=5&around={p05['id']}", headers=tenant.auth
    )
    data = response.get_json()
    assert data["around_rank"] == 8
    assert [e["rank"] for e in data["entries"]] == [6, 7, 8, 9, 10]
    assert data["entries"][2]["player_id"] == p05["id"]
    # Near the bottom the window stays full rather than running off the end.
    p01 = find(client, tenant, "p01")
    response = client.get(
        f"/api/v1/leaderboards/tenant?limit=5&around={p01['id']}", headers=tenant.auth
    )
    assert [e["rank"] for e in response.get_json()["entries"]] == [8, 9, 10, 11, 12]


def test_course_boards_count_only_that_course(client, tenant: TenantHandle):
    post(
        client,
        tenant,
        event("1", actor="ann", course="math"),
        event("2", actor="ann", course="bio"),
        event("3", actor="bob", course="bio", type="course.completed"),
    )
    data = client.get("/api/v1/leaderboards/course:bio", headers=tenant.auth).get_json()
    assert [(e["display_name"], e["xp"]) for e in data["entries"]] == [("Bob", 100), ("Ann", 10)]
    data = client.get("/api/v1/leaderboards/course:math", headers=tenant.auth).get_json()
    assert [(e["display_name"], e["xp"]) for e in data["entries"]] == [("Ann", 10)]


def test_empty_tenant_board_exists(client, tenant: TenantHandle):
    response = client.get("/api/v1/leaderboards/tenant", headers=tenant.auth)
    assert response.status_code == 200
    assert response.get_json()["entries"] == []


def test_bad_board_requests(client, tenant: TenantHandle):
    assert client.get("/api/v1/leaderboards/global", headers=tenant.auth).status_code == 404
    for query in ("limit=0", "limit=101", "limit=x", "around=-1"):
        response = client.get(f"/api/v1/leaderboards/tenant?{query}", headers=tenant.auth)
        assert response.status_code == 400, query
    assert (
        client.get("/api/v1/leaderboards/tenant?around=424242", headers=tenant.auth).status_code
        == 404
    )


def test_tenants_cannot_read_each_other(client, tenant: TenantHandle, other_tenant: TenantHandle):
    post(client, tenant, event("1", actor="ann"))
    ann = find(client, tenant, "ann")
    assert client.get(f"/api/v1/players/{ann['id']}", headers=other_tenant.auth).status_code == 404
    assert client.get("/api/v1/players?actor=ann", headers=other_tenant.auth).status_code == 404
    board = client.get("/api/v1/leaderboards/tenant", headers=other_tenant.auth).get_json()
    assert board["entries"] == []
    response = client.get(
        f"/api/v1/leaderboards/tenant?around={ann['id']}", headers=other_tenant.auth
    )
    assert response.status_code == 404
    # The same actor id in another tenant is another player.
    post(client, other_tenant, event("1", actor="ann"))
    assert find(client, other_tenant, "ann")["id"] != ann["id"]


def test_board_reads_degrade_to_the_database_when_redis_is_down(client, tenant, app):
    post(client, tenant, event("1", actor="ann"), event("2", actor="bob", type="course.completed"))
    ctx = app.extensions["questline"]
    dead = dead_redis()
    healthy = ctx.boards
    ctx.boards = Leaderboards(dead, healthy.prefix)
    try:
        response = client.get("/api/v1/leaderboards/tenant", headers=tenant.auth)
        player = client.get("/api/v1/players?actor=ann", headers=tenant.auth).get_json()
        detail = client.get(
            f"/api/v1/players/{player['players'][0]['id']}", headers=tenant.auth
        ).get_json()
        home_health = client.get("/healthz")
    finally:
        ctx.boards = healthy
    data = response.get_json()
    assert response.status_code == 200
    assert data["source"] == "database" and data["degraded"] is True
    assert [(e["rank"], e["display_name"], e["xp"]) for e in data["entries"]] == [
        (1, "Bob", 100),
        (2, "Ann", 10),
    ]
    assert detail["xp"] == 10 and detail["rank"] is None
    assert home_health.status_code == 200  # ctx.redis itself is still up here
