"""Group boards: an event's ``context.group`` makes the actor a member of that LMS group; each group
has a board per window (day, week, month, all time) ranking its members, rebuilt by reconcile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from questline.league_models import PlayerGroup
from tests.conftest import TenantHandle, event
from tests.leagues.test_api import now_iso, player_id, post
from workers.context import Context


def grouped(event_id: str, actor: str, group: str | None, at: str, **extra: Any) -> dict:
    body = event(event_id, actor=actor, at=at, **extra)
    if group is not None:
        body["context"] = {**body.get("context", {}), "group": group}
    return body


def board(client: FlaskClient, tenant: TenantHandle, path: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/boards/{path}", headers=tenant.auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_group_boards_rank_members_by_the_windows_xp(
    client: FlaskClient, tenant: TenantHandle, ctx: Context
) -> None:
    now = datetime.now(UTC)
    last_month = (now - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")  # applied now
    at = now_iso()
    post(
        client,
        tenant,
        grouped("1", "ann", "g-1", at),
        grouped("2", "bob", "g-1", at, type="course.completed"),
        grouped("3", "cy", "g-2", at),
        # Bob's XP outside the group still counts on the group's board: it ranks members.
        grouped("4", "bob", None, at, object={"id": "other", "type": "lesson"}),
    )
    ann, bob, cy = (player_id(client, tenant, a) for a in ("ann", "bob", "cy"))
    with ctx.db.sessions() as session:
        members = set(
            session.execute(
                select(PlayerGroup.group_id, PlayerGroup.player_id).where(
                    PlayerGroup.tenant_id == tenant.id
                )
            ).all()
        )
    assert members == {("g-1", ann), ("g-1", bob), ("g-2", cy)}

    week = board(client, tenant, "week/group:g-1")
    assert [e["player_id"] for e in week["entries"]] == [bob, ann]
    assert week["total"] == 2 and week["source"] == "redis"
    assert week["entries"][0]["xp"] > week["entries"][1]["xp"] == 10
    for kind in ("day", "month", "all"):
        assert [e["player_id"] for e in board(client, tenant, f"{kind}/group:g-1")["entries"]] == [
            bob,
            ann,
        ]
    assert [e["player_id"] for e in board(client, tenant, "all/group:g-2")["entries"]] == [cy]
    assert board(client, tenant, "week/group:nobody")["total"] == 0

    # Cy joins g-1 later: every window's g-1 board shows Cy's XP of that window, all of it,
    # the same as the tenant board does (XP earned in g-2 included).
    post(client, tenant, grouped("5", "cy", "g-1", last_month))
    tenant_week = {e["player_id"]: e["xp"] for e in board(client, tenant, "week/tenant")["entries"]}
    week = board(client, tenant, "week/group:g-1")
    assert {e["player_id"]: e["xp"] for e in week["entries"]} == tenant_week
    assert tenant_week[cy] == 20
    around = board(client, tenant, f"all/group:g-1?around={ann}&limit=1")
    assert around["around_rank"] is not None and around["entries"][0]["player_id"] == ann


def test_a_group_id_with_spaces_is_refused_and_groups_have_no_leagues(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    response = client.post(
        "/api/v1/events", json=[grouped("1", "ann", "group A", now_iso())], headers=tenant.auth
    )
    assert response.status_code == 422
    assert "context.group" in response.get_data(as_text=True)
    response = client.put(
        "/api/v1/leagues/config", json={"league": "group:g-1"}, headers=tenant.auth
    )
    assert response.status_code == 422
    response = client.get(
        "/api/v1/leagues/standings?player=1&league=group:g-1", headers=tenant.auth
    )
    assert response.status_code == 400


def test_reconcile_rebuilds_group_boards_after_redis_is_lost(
    client: FlaskClient, tenant: TenantHandle, ctx: Context, monkeypatch: Any
) -> None:
    from questline import cli as cli_mod
    from tests.leagues.test_reconcile import lose_redis

    at = now_iso()
    post(client, tenant, grouped("1", "ann", "g-1", at), grouped("2", "bob", "g-1", at))
    before = {k: board(client, tenant, f"{k}/group:g-1")["entries"] for k in ("week", "all")}
    assert len(before["week"]) == 2
    lose_redis(ctx.redis)
    monkeypatch.setattr("workers.context.build_context", lambda settings: ctx)
    result = CliRunner().invoke(cli_mod.main, ["reconcile", "--tenant", str(tenant.id)])
    assert result.exit_code == 0, result.output
    after = {k: board(client, tenant, f"{k}/group:g-1") for k in ("week", "all")}
    assert {k: v["entries"] for k, v in after.items()} == before
    assert all(v["source"] == "redis" for v in after.values())
