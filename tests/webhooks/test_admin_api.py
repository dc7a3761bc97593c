"""``/api/v1/webhooks``: a tenant admin subscribes URLs, reads the delivery log and lists the
inbound connections, with the tenant API key; nothing crosses tenants and no secret leaks."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient

from questline.db import Database
from tests.conftest import TenantHandle
from tests.webhooks.helpers import connect
from webhooks.outbound import deliver_due, record


def _auth(tenant: TenantHandle) -> dict[str, str]:
    return tenant.auth


def test_subscribe_list_and_disable(
    client: FlaskClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    created = client.post(
        "/api/v1/webhooks/subscriptions",
        json={"url": "https://hooks.example/q", "events": ["badge.awarded", "level.reached"]},
        headers=_auth(tenant),
    )
    assert created.status_code == 201
    sub = created.json
    assert sub["secret"].startswith("whsec_") and sub["events"] == [
        "badge.awarded",
        "level.reached",
    ]
    listed = client.get("/api/v1/webhooks/subscriptions", headers=_auth(tenant)).json
    assert [s["id"] for s in listed["subscriptions"]] == [sub["id"]]
    assert "secret" not in listed["subscriptions"][0]
    theirs = client.get("/api/v1/webhooks/subscriptions", headers=_auth(other_tenant)).json
    assert theirs == {"subscriptions": []}
    url = f"/api/v1/webhooks/subscriptions/{sub['id']}"
    assert client.delete(url, headers=_auth(other_tenant)).status_code == 404
    assert client.delete(url, headers=_auth(tenant)).status_code == 204
    listed = client.get("/api/v1/webhooks/subscriptions", headers=_auth(tenant)).json
    assert listed["subscriptions"][0]["enabled"] is False


def test_bad_subscriptions_are_clear_4xx(client: FlaskClient, tenant: TenantHandle) -> None:
    path = "/api/v1/webhooks/subscriptions"
    assert client.get(path).status_code == 401
    cases = [
        (b"not json", "application/json"),
        (b'{"url": "ftp://x", "events": ["badge.awarded"]}', "application/json"),
        (b'{"url": "https://x.example", "events": ["xp.changed"]}', "application/json"),
        (b'{"url": "https://x.example", "events": [1]}', "application/json"),
        (b'{"url": "https://x.example", "events": []}', "application/json"),
        (b"[]", "application/json"),
    ]
    for body, media in cases:
        response = client.post(path, data=body, content_type=media, headers=_auth(tenant))
        assert response.status_code == 400, body
        assert response.json["error"] == "bad_request" and response.json["message"]


def test_delivery_log_shows_attempts(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    created = client.post(
        "/api/v1/webhooks/subscriptions",
        json={"url": "https://hooks.unreachable.invalid/h", "events": ["badge.awarded"]},
        headers=_auth(tenant),
    ).json
    with db.session() as session:
        assert record(session, tenant.id, "badge.awarded", {"badge": "b1"}, "award:1") == 1
    stats = deliver_due(db, datetime.now(UTC))
    assert stats.retrying == 1
    log = client.get("/api/v1/webhooks/deliveries?limit=5", headers=_auth(tenant)).json
    (entry,) = log["deliveries"]
    assert entry["type"] == "badge.awarded" and entry["status"] == "pending"
    assert entry["attempts"] == 1 and entry["log"][0]["error"]
    assert created["id"]
    bad = client.get("/api/v1/webhooks/deliveries?limit=0", headers=_auth(tenant))
    assert bad.status_code == 400


def test_connections_listed_without_secrets(
    client: FlaskClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "moodle", identity="email", namespace="lms")
    connect(db, other_tenant.id, "standard")
    body = client.get("/api/v1/webhooks/connections", headers=_auth(tenant))
    assert body.status_code == 200
    assert body.json == {
        "connections": [
            {"id": public_id, "kind": "moodle", "label": "", "url": f"/webhooks/{public_id}",
             "enabled": True, "identity": "email", "namespace": "lms"}
        ]
    }  # fmt: skip
    assert secret not in body.get_data(as_text=True)
