"""POST /api/v1/events: stored before acknowledged, every bad input a clear 4xx."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from questline.models import InboxEvent, XpLedger
from tests.conftest import TenantHandle, event


def inbox_count(db, tenant_id: int) -> int:
    with db.sessions() as session:
        return session.scalar(
            select(func.count()).select_from(InboxEvent).where(InboxEvent.tenant_id == tenant_id)
        )


def test_single_event_is_accepted_stored_raw_and_applied(client, tenant: TenantHandle, db):
    body = event("e-1")
    response = client.post("/api/v1/events", json=body, headers=tenant.auth)
    assert response.status_code == 202
    assert response.get_json() == {"accepted": ["e-1"], "duplicates": [], "rejected": []}
    with db.sessions() as session:
        row = session.scalars(select(InboxEvent).where(InboxEvent.tenant_id == tenant.id)).one()
        assert json.loads(row.raw) == body
        assert row.canonical["actor"]["id"] == "learner-1"
        assert row.status == "applied"
        ledger = session.scalars(select(XpLedger).where(XpLedger.tenant_id == tenant.id)).all()
    assert [(entry.rule_id, entry.amount) for entry in ledger] == [("lesson-completed", 10)]


def test_batch_reports_accepted_duplicates_and_rejected_without_losing_valid_items(
    client, tenant: TenantHandle, db
):
    client.post("/api/v1/events", json=event("seen-before"), headers=tenant.auth)
    items = [
        event("a"),
        {"id": "bad-1", "type": "lesson.completed", "occurred_at": "2026-11-20T10:00:00Z"},
        event("seen-before"),
        event("b", occurred_at="2026-11-20T10:00:00"),  # naive time: rejected
        event("a"),  # repeated inside the batch
        event("c"),
    ]
    response = client.post("/api/v1/events", json={"events": items}, headers=tenant.auth)
    assert response.status_code == 202
    data = response.get_json()
    assert data["accepted"] == ["a", "c"]
    assert sorted(data["duplicates"]) == ["a", "seen-before"]
    rejected = {r["index"]: r for r in data["rejected"]}
    assert set(rejected) == {1, 3}
    assert rejected[1]["id"] == "bad-1"
    assert rejected[1]["errors"] == [{"field": "actor", "message": "is required"}]
    assert rejected[3]["errors"][0]["field"] == "occurred_at"
    assert "time zone" in rejected[3]["errors"][0]["message"]
    assert inbox_count(db, tenant.id) == 3  # seen-before, a, c


def test_a_bare_list_is_a_batch(client, tenant: TenantHandle):
    response = client.post("/api/v1/events", json=[event("x"), event("y")], headers=tenant.auth)
    assert response.status_code == 202
    assert response.get_json()["accepted"] == ["x", "y"]


def test_repeated_delivery_is_reported_and_never_applied_twice(client, tenant: TenantHandle, db):
    for _ in range(3):
        response = client.post("/api/v1/events", json=event("same"), headers=tenant.auth)
        assert response.status_code == 202
    assert response.get_json() == {"accepted": [], "duplicates": ["same"], "rejected": []}
    with db.sessions() as session:
        total = session.scalar(
            select(func.sum(XpLedger.amount)).where(XpLedger.tenant_id == tenant.id)
        )
    assert total == 10


def test_same_id_from_another_source_is_another_event(client, tenant: TenantHandle, db):
    client.post("/api/v1/events", json=event("e-1"), headers=tenant.auth)
    response = client.post(
        "/api/v1/events", json=event("e-1", source="moodle"), headers=tenant.auth
    )
    assert response.get_json()["accepted"] == ["e-1"]
    assert inbox_count(db, tenant.id) == 2


def test_invalid_single_event_is_422_naming_each_field(client, tenant: TenantHandle, db):
    bad = event("e-1", type="Lesson Completed", result={"score": 1.5})
    response = client.post("/api/v1/events", json=bad, headers=tenant.auth)
    assert response.status_code == 422
    data = response.get_json()
    assert data["error"] == "invalid"
    assert {d["field"] for d in data["details"]} == {"type", "result.score"}
    assert "result.score" in data["message"]
    assert inbox_count(db, tenant.id) == 0


def test_batch_with_only_invalid_items_is_422(client, tenant: TenantHandle):
    response = client.post(
        "/api/v1/events", json={"events": [{"id": "x"}, 42]}, headers=tenant.auth
    )
    assert response.status_code == 422
    data = response.get_json()
    assert [r["index"] for r in data["rejected"]] == [0, 1]
    assert data["rejected"][1]["errors"] == [
        {"field": "$", "message": "an event must be a JSON object"}
    ]


def test_malformed_json_is_400(client, tenant: TenantHandle):
    response = client.post(
        "/api/v1/events",
        data=b'{"id": "e-1",',
        headers={**tenant.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["message"]


def test_empty_body_and_wrong_shapes(client, tenant: TenantHandle):
    assert client.post("/api/v1/events", data=b"", headers=tenant.auth).status_code == 400
    assert client.post("/api/v1/events", json="text", headers=tenant.auth).status_code == 422
    assert (
        client.post("/api/v1/events", json={"events": []}, headers=tenant.auth).status_code == 422
    )
    response = client.post("/api/v1/events", json={"events": {"a": 1}}, headers=tenant.auth)
    assert response.status_code == 422
    assert response.get_json()["details"] == [{"field": "events", "message": "must be a list"}]


def test_missing_or_wrong_key_is_401(client, tenant: TenantHandle, db):
    assert client.post("/api/v1/events", json=event("e")).status_code == 401
    response = client.post(
        "/api/v1/events", json=event("e"), headers={"Authorization": "Bearer ql_wrong"}
    )
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.post(
        "/api/v1/events", json=event("e"), headers={"Authorization": f"Basic {tenant.key}"}
    )
    assert response.status_code == 401
    assert inbox_count(db, tenant.id) == 0


def test_body_over_the_byte_limit_is_413(client, tenant: TenantHandle, settings):
    huge = event("e", extensions={"blob": "x" * (settings.max_body_bytes + 10)})
    response = client.post("/api/v1/events", json=huge, headers=tenant.auth)
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_batch_over_the_item_limit_is_413(client, tenant: TenantHandle, settings, db):
    items = [{"id": str(i)} for i in range(settings.max_batch + 1)]
    response = client.post("/api/v1/events", json=items, headers=tenant.auth)
    assert response.status_code == 413
    assert str(settings.max_batch) in response.get_json()["message"]
    assert inbox_count(db, tenant.id) == 0


def test_a_full_batch_of_1000_is_accepted(client, tenant: TenantHandle, db):
    items = [event(f"e-{i}", actor=f"learner-{i % 37}") for i in range(1000)]
    response = client.post("/api/v1/events", json=items, headers=tenant.auth)
    assert response.status_code == 202
    assert len(response.get_json()["accepted"]) == 1000
    with db.sessions() as session:
        applied = session.scalar(
            select(func.count())
            .select_from(InboxEvent)
            .where(InboxEvent.tenant_id == tenant.id, InboxEvent.status == "applied")
        )
    assert applied == 1000


def test_nothing_is_acknowledged_when_the_store_fails(client, tenant: TenantHandle, app):
    """Stored before acknowledged: if the inbox write fails, the sender gets a 5xx to retry."""
    ctx = app.extensions["questline"]
    original = ctx.db.session

    def broken():
        raise ConnectionError("database went away")

    ctx.db.session = broken
    try:
        response = client.post("/api/v1/events", json=event("e-1"), headers=tenant.auth)
    finally:
        ctx.db.session = original
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal",
        "message": "internal error; it has been logged",
    }


def test_a_nul_character_is_rejected_by_field_and_spares_the_rest(client, tenant: TenantHandle, db):
    """PostgreSQL text and jsonb cannot store U+0000; it must be a 422 item, not a failed batch."""
    bad = event("nul-1")
    bad["actor"]["name"] = "Ada\u0000"
    response = client.post("/api/v1/events", json=[bad, event("ok-1")], headers=tenant.auth)
    assert response.status_code == 202
    data = response.get_json()
    assert data["accepted"] == ["ok-1"]
    assert data["rejected"] == [
        {
            "index": 0,
            "id": "nul-1",
            "errors": [
                {"field": "actor.name", "message": "must not contain the NUL character (\\u0000)"}
            ],
        }
    ]
    single = client.post("/api/v1/events", json=bad, headers=tenant.auth)
    assert single.status_code == 422 and "actor.name" in single.get_json()["message"]
    assert inbox_count(db, tenant.id) == 1


def test_the_nul_shortcut_never_lets_one_through(client, tenant: TenantHandle, db):
    """Ingest skips the per-value NUL scan when the body has no \\u0000 escape; a UTF-16 body
    (json.loads reads it) must still be scanned, and a literal backslash-u0000 is no NUL."""
    bad = event("nul-16")
    bad["object"]["id"] = "lesson\u0000"
    body = json.dumps([bad, event("ok-16")]).encode("utf-16")
    response = client.post(
        "/api/v1/events", data=body, headers={**tenant.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.get_json()
    data = response.get_json()
    assert data["accepted"] == ["ok-16"]
    assert data["rejected"][0]["errors"][0]["field"] == "object.id"
    harmless = event("backslash-1")
    harmless["object"]["id"] = "C:\\u0000"  # a backslash, then the text u0000
    response = client.post("/api/v1/events", json=harmless, headers=tenant.auth)
    assert response.status_code == 202 and response.get_json()["accepted"] == ["backslash-1"]
    assert inbox_count(db, tenant.id) == 2


def test_machine_endpoints_get_a_null_session_and_browser_pages_a_real_one(app):
    from flask.sessions import NullSession, SecureCookieSession

    interface = app.session_interface
    for path, kind in [
        ("/api/v1/events", NullSession),
        ("/webhooks/abc", NullSession),
        ("/api/v1/players/1", SecureCookieSession),
        ("/lti/launch", SecureCookieSession),
    ]:
        with app.test_request_context(path):
            from flask import request

            opened = interface.open_session(app, request)
            assert type(opened) is kind, path
