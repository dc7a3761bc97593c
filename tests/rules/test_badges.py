"""Badges through the real pipeline and API: awarded once, shown on the player, revoked with a
reason (and not simply earned again), explained in the activity feed, tenant-isolated."""

from __future__ import annotations

from sqlalchemy import func, select, update

from questline.models import InboxEvent, PlayerBadge
from tests.conftest import event
from tests.rules.helpers import EXAMPLES, post
from workers.rulesets import read_document, store_version


def setup_rules(db, tenant, document=None):
    document = document or read_document((EXAMPLES / "tenant.yaml").read_text())
    with db.session() as session:
        store_version(session, tenant.id, document, course=None, actor="test")


def quiz(event_id, obj, score=0.8, course="c1", actor="ann", at="2026-11-20T10:00:00Z"):
    return event(
        event_id,
        type="quiz.submitted",
        actor=actor,
        score=score,
        course=course,
        at=at,
        object={"id": obj, "type": "quiz"},
    )


def player_id(client, tenant, actor="ann") -> int:
    found = client.get(f"/api/v1/players?actor={actor}", headers=tenant.auth).get_json()
    return found["players"][0]["id"]


def test_badges_are_awarded_once_and_shown_on_the_player(client, db, ctx, tenant):
    setup_rules(db, tenant)
    post(
        client, tenant, quiz("1", "a"), quiz("2", "b"), quiz("3", "c"), quiz("4", "d", course="c2")
    )
    # Duplicates and a replayed row change nothing.
    post(client, tenant, quiz("3", "c"))
    with db.session() as session:
        session.execute(
            update(InboxEvent).where(InboxEvent.tenant_id == tenant.id).values(status="pending")
        )
    ctx.pipeline.drain()

    pid = player_id(client, tenant)
    player = client.get(f"/api/v1/players/{pid}", headers=tenant.auth).get_json()
    (badge,) = player["badges"]
    assert (badge["badge_id"], badge["tier_name"], badge["course"]) == ("quiz-whiz", "bronze", "c1")
    assert badge["explanation"] == (
        "badge `quiz-whiz` Quiz whiz (bronze) earned in course c1 with event 3: "
        "distinct objects 3 >= 3"
    )
    with db.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(PlayerBadge).where(PlayerBadge.tenant_id == tenant.id)
        )
    assert count == 1


def test_revocation_with_a_reason(client, db, tenant, other_tenant):
    setup_rules(db, tenant)
    post(client, tenant, quiz("p", "a", score=1.0))
    pid = player_id(client, tenant)
    (badge,) = client.get(f"/api/v1/players/{pid}/badges", headers=tenant.auth).get_json()["badges"]
    assert badge["badge_id"] == "perfectionist"
    url = f"/api/v1/players/{pid}/badges/{badge['award_id']}/revoke"

    assert client.post(url, json={}, headers=tenant.auth).status_code == 422
    assert client.post(url, json={"reason": "x"}, headers=other_tenant.auth).status_code == 404
    done = client.post(url, json={"reason": "answers were shared"}, headers=tenant.auth)
    assert done.status_code == 200
    assert done.get_json()["revoked_reason"] == "answers were shared"
    again = client.post(url, json={"reason": "second"}, headers=tenant.auth)
    assert again.get_json()["revoked_reason"] == "answers were shared"  # the first one stands

    assert client.get(f"/api/v1/players/{pid}", headers=tenant.auth).get_json()["badges"] == []
    everything = client.get(f"/api/v1/players/{pid}/badges?all=true", headers=tenant.auth)
    assert [b["revoked_reason"] for b in everything.get_json()["badges"]] == ["answers were shared"]
    # Another perfect score does not simply award it again.
    post(client, tenant, quiz("p2", "b", score=1.0))
    assert client.get(f"/api/v1/players/{pid}", headers=tenant.auth).get_json()["badges"] == []


def test_activity_feed_explains_every_award(client, db, tenant):
    setup_rules(db, tenant)
    post(client, tenant, quiz("q", "a", score=0.95))
    pid = player_id(client, tenant)
    items = client.get(f"/api/v1/players/{pid}/activity", headers=tenant.auth).get_json()["items"]
    texts = sorted(item["explanation"] for item in items)
    assert texts == [
        "rule `quiz-ace` matched quiz.submitted event q: +50 XP "
        "(object type quiz; score 0.95 >= 0.9; first time on object a)",
        "rule `quiz-graded` matched quiz.submitted event q: +95 XP "
        "(100 * score = 95 with score 0.95)",
    ]
    assert (
        client.get(f"/api/v1/players/{pid}/activity?limit=0", headers=tenant.auth).status_code
        == 400
    )
    assert client.get("/api/v1/players/999999999/activity", headers=tenant.auth).status_code == 404


def test_level_and_expiring_badges(client, db, tenant):
    setup_rules(
        db,
        tenant,
        {
            "xp": [{"id": "c", "on": "course.completed", "points": 100}],
            "levels": {"table": [0, 100, 200]},
            "badges": [
                {"id": "lvl3", "criteria": {"level": 3}},
                {"id": "fresh", "expires_after": "1d", "criteria": {"count": 1}},
            ],
        },
    )
    post(
        client,
        tenant,
        event("a", type="course.completed", at="2020-01-01T10:00:00Z"),
        event("b", type="course.completed", at="2020-01-02T10:00:00Z"),
    )
    pid = player_id(client, tenant, "learner-1")
    shown = client.get(f"/api/v1/players/{pid}", headers=tenant.auth).get_json()["badges"]
    assert [b["badge_id"] for b in shown] == ["lvl3"]  # "fresh" expired long ago
    everything = client.get(f"/api/v1/players/{pid}/badges?all=1", headers=tenant.auth).get_json()
    # "fresh" was earned on the 1st, expired a day later and earned again with event b.
    assert sorted(b["badge_id"] for b in everything["badges"]) == ["fresh", "fresh", "lvl3"]
