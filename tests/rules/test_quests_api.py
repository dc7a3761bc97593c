"""Quests through the pipeline and API: live progress, a reward claimed exactly once (XP, coins,
a badge), clear refusals, tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.conftest import event
from tests.rules.helpers import post
from workers.rulesets import store_version

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")

RULES: dict[str, Any] = {
    "version": 2,
    "xp": [{"id": "lesson", "on": "lesson.completed", "points": 10}],
    "badges": [{"id": "quester", "name": "Quester", "criteria": {"level": 99}}],
    "quests": [
        {
            "id": "three-lessons",
            "name": "Three lessons today",
            "period": "daily",
            "objectives": [{"count": 3, "of": {"on": "lesson.completed"}}],
            "reward": {"xp": 25, "currency": 7, "badge": "quester"},
        }
    ],
}


def lessons(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [event(f"l{i}", actor="ann", at=f"{TODAY}T00:0{i}:00Z") for i in range(start, start + n)]


def test_progress_and_claim_once(client, db, ctx, tenant, other_tenant):
    with db.session() as session:
        store_version(session, tenant.id, RULES, course=None, actor="test")
    post(client, tenant, *lessons(2))
    found = client.get("/api/v1/players?actor=ann", headers=tenant.auth).get_json()
    pid = found["players"][0]["id"]
    url = f"/api/v1/players/{pid}/quests"

    (quest,) = client.get(url, headers=tenant.auth).get_json()["quests"]
    assert quest["current_period"] == TODAY
    assert quest["objectives"][0]["progress"] == 2 and quest["objectives"][0]["target"] == 3
    assert (quest["completed"], quest["claimed"]) == (False, False)
    early = client.post(f"{url}/three-lessons/claim", headers=tenant.auth)
    assert early.status_code == 409 and early.get_json()["error"] == "not_completed"

    post(client, tenant, *lessons(2, start=2))
    (quest,) = client.get(url, headers=tenant.auth).get_json()["quests"]
    assert quest["completed"] and quest["claimable_periods"] == [TODAY]
    claimed = client.post(f"{url}/three-lessons/claim", headers=tenant.auth)
    assert claimed.status_code == 201, claimed.get_json()
    assert claimed.get_json()["explanation"] == (
        f"quest `three-lessons` Three lessons today claimed for {TODAY}: "
        "+25 XP, +7 coins, badge Quester"
    )
    again = client.post(f"{url}/three-lessons/claim", headers=tenant.auth)
    assert again.status_code == 409 and again.get_json()["error"] == "already_claimed"

    player = client.get(f"/api/v1/players/{pid}", headers=tenant.auth).get_json()
    assert player["xp"] == 4 * 10 + 25
    assert [b["badge_id"] for b in player["badges"]] == ["quester"]
    wallet = client.get(f"/api/v1/players/{pid}/wallet", headers=tenant.auth).get_json()
    assert wallet["balance"] == 7 and wallet["entries"][0]["kind"] == "quest"
    feed = client.get(f"/api/v1/players/{pid}/activity", headers=tenant.auth).get_json()
    quest_items = [i for i in feed["items"] if "quest `three-lessons`" in i["explanation"]]
    assert sorted(i["kind"] for i in quest_items) == ["badge", "coins", "xp"]
    (quest,) = client.get(url, headers=tenant.auth).get_json()["quests"]
    assert quest["claimed"] and quest["claimable_periods"] == []

    unknown = client.post(f"{url}/nope/claim", headers=tenant.auth)
    assert unknown.status_code == 404 and "nope" in unknown.get_json()["message"]
    bad_period = client.post(f"{url}/three-lessons/claim", json={"period": 5}, headers=tenant.auth)
    assert bad_period.status_code == 422
    assert client.get(url, headers=other_tenant.auth).status_code == 404
    assert client.post(f"{url}/three-lessons/claim", headers=other_tenant.auth).status_code == 404
