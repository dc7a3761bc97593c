"""The receiver over HTTP against the real PostgreSQL and Redis: verify, parse, store, answer.

Durable before acknowledged, duplicates acknowledged and not applied twice, every bad input a
clear 4xx that stores nothing, and won deals awarding XP through the shipped example rules.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from questline import create_app
from questline.db import Database
from questline.models import Player, PlayerIdentity
from questline.settings import Settings
from tests.conftest import TenantHandle, make_context
from tests.webhooks.helpers import (
    basic,
    connect,
    fixture_bytes,
    fixture_json,
    hubspot_headers,
    inbox,
    standard_headers,
)
from tests.webhooks.test_normalize import SF_ORG, XXE, opportunity_message
from webhooks.connections import rotate_secret
from webhooks.models import WebhookConnection
from workers.rulesets import read_document, store_version

EXAMPLE_RULES = (
    Path(__file__).resolve().parents[2] / "examples" / "rules" / "crm-sales-training.yaml"
)


def _player_xp(db: Database, tenant_id: int, actor_id: str) -> int | None:
    with db.sessions() as session:
        return session.scalar(
            select(Player.xp)
            .join(PlayerIdentity, PlayerIdentity.player_id == Player.id)
            .where(PlayerIdentity.tenant_id == tenant_id, PlayerIdentity.kind == "actor",
                   PlayerIdentity.value == actor_id)
        )  # fmt: skip


def _load_example_rules(db: Database, tenant_id: int) -> None:
    with db.session() as session:
        store_version(session, tenant_id, read_document(EXAMPLE_RULES.read_text()), course=None,
                      actor="test")  # fmt: skip


def test_hubspot_v3_signed_batch_is_stored_raw_then_acknowledged(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "hubspot", secret="client-secret-1")
    body = fixture_bytes("hubspot/webhook_batch.docs_example.json")
    url = f"http://localhost/webhooks/{public_id}"
    response = client.post(url, data=body, headers=hubspot_headers(secret, url, body))
    assert response.status_code == 200, response.json
    assert response.json == {"accepted": 2, "duplicates": 0}
    rows = inbox(db, tenant.id)
    assert [r.event_key for r in rows] == ["33/25/3816279340/1462216307945",
                                           "33/22/3816279480/1462216307945"]  # fmt: skip
    assert {r.source for r in rows} == {f"hubspot:{public_id}"}
    assert rows[0].raw == body.decode()  # the exact bytes that were signed
    # A retry (HubSpot bumps attemptNumber and re-signs) is acknowledged, not stored again.
    retry = json.dumps([{**e, "attemptNumber": 1} for e in json.loads(body)]).encode()
    again = client.post(url, data=retry, headers=hubspot_headers(secret, url, retry))
    assert again.status_code == 200 and again.json == {"accepted": 0, "duplicates": 2}
    assert len(inbox(db, tenant.id)) == 2


def test_one_bad_item_does_not_lose_the_rest_of_the_batch(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    """HubSpot never retries a 4xx: the readable events of a batch are stored, the bad one named."""
    public_id, secret = connect(db, tenant.id, "hubspot", secret="client-secret-5")
    url = f"http://localhost/webhooks/{public_id}"
    good, bad = json.loads(fixture_bytes("hubspot/webhook_batch.docs_example.json"))
    del bad["eventId"]
    body = json.dumps([good, bad, "not an event"]).encode()
    response = client.post(url, data=body, headers=hubspot_headers(secret, url, body))
    assert response.status_code == 200
    assert response.json == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [
            {"index": 1, "message": "eventId and objectId are required"},
            {"index": 2, "message": "a HubSpot event must be a JSON object"},
        ],
    }
    assert [r.event_key for r in inbox(db, tenant.id)] == ["33/25/3816279340/1462216307945"]
    # A batch with nothing readable is still a 400 that stores nothing.
    body = json.dumps([bad, "not an event"]).encode()
    refused = client.post(url, data=body, headers=hubspot_headers(secret, url, body))
    assert refused.status_code == 400 and refused.json["error"] == "invalid_payload"
    assert [d["index"] for d in refused.json["details"]] == [0, 1]
    assert len(inbox(db, tenant.id)) == 1


def test_hubspot_replayed_stale_and_tampered_requests_are_refused(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "hubspot", secret="client-secret-2")
    body = fixture_bytes("hubspot/webhook_batch.docs_example.json")
    url = f"http://localhost/webhooks/{public_id}"
    old = int((time.time() - 301) * 1000)
    stale = client.post(url, data=body, headers=hubspot_headers(secret, url, body, at_ms=old))
    assert stale.status_code == 401 and stale.json["error"] == "bad_signature"
    assert "5 minutes" in stale.json["message"]
    headers = hubspot_headers(secret, url, body)
    tampered = client.post(url, data=body.replace(b"1246965", b"1246966"), headers=headers)
    assert tampered.status_code == 401
    wrong = client.post(url, data=body, headers=hubspot_headers("not-the-secret", url, body))
    assert wrong.status_code == 401
    unsigned = client.post(url, data=body, content_type="application/json")
    assert unsigned.status_code == 401
    assert inbox(db, tenant.id) == []


def test_hubspot_v1_legacy_signature_on_the_docs_body(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    vector = fixture_json("hubspot/signature_test_vectors.json")["vectors"][0]
    public_id, _ = connect(db, tenant.id, "hubspot", secret=vector["client_secret"])
    body = fixture_bytes("hubspot/webhook_contact_creation.v1_signature_doc_body.json")
    response = client.post(f"/webhooks/{public_id}", data=body,
                           headers={"Content-Type": "application/json",
                                    **vector["expected_header"]})  # fmt: skip
    assert response.status_code == 200 and response.json["accepted"] == 1
    assert inbox(db, tenant.id)[0].event_key == "62515/12345/1/1564113600000"


def test_hubspot_deal_won_awards_the_owner_through_the_example_rules(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    _load_example_rules(db, tenant.id)
    public_id, secret = connect(db, tenant.id, "hubspot", secret="client-secret-3")
    url = f"http://localhost/webhooks/{public_id}"
    now_ms = int(time.time() * 1000)
    base = {"subscriptionId": 7, "portalId": 62515, "appId": 1, "objectId": 555,
            "subscriptionType": "deal.propertyChange", "attemptNumber": 0}  # fmt: skip
    owner = [{**base, "eventId": 1, "occurredAt": now_ms - 5000,
              "propertyName": "hubspot_owner_id", "propertyValue": "321"}]  # fmt: skip
    won = [{**base, "eventId": 2, "occurredAt": now_ms, "propertyName": "dealstage",
            "propertyValue": "closedwon"}]  # fmt: skip
    for batch in (owner, won, won):  # the won event is delivered twice
        body = json.dumps(batch).encode()
        assert (
            client.post(url, data=body, headers=hubspot_headers(secret, url, body)).status_code
            == 200
        )
    rows = inbox(db, tenant.id)
    assert [r.event_type for r in rows] == ["hubspot.deal.property_change", "deal.won"]
    assert all(r.status == "applied" for r in rows)
    assert _player_xp(db, tenant.id, f"{public_id}:owner:321") == 50  # once, not twice


def test_standard_webhooks_delivery_retry_and_bad_signature(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "standard")
    assert secret.startswith("whsec_")
    body = fixture_bytes("standard-webhooks/payload.contact_created.full.json")
    url = f"/webhooks/{public_id}"
    first = client.post(url, data=body, headers=standard_headers(secret, body, "msg_a"))
    assert first.status_code == 200 and first.json == {"accepted": 1, "duplicates": 0}
    # The sender retries the same message later with a new timestamp and signature.
    later = standard_headers(secret, body, "msg_a", at=int(time.time()) - 60)
    retry = client.post(url, data=body, headers=later)
    assert retry.status_code == 200 and retry.json == {"accepted": 0, "duplicates": 1}
    stale = standard_headers(secret, body, "msg_b", at=int(time.time()) - 400)
    assert client.post(url, data=body, headers=stale).status_code == 401
    forged = standard_headers("whsec_" + "QUJD" * 8, body, "msg_c")
    assert client.post(url, data=body, headers=forged).status_code == 401
    rows = inbox(db, tenant.id)
    assert [(r.event_key, r.event_type) for r in rows] == [("msg_a", "contact.created")]


def test_bad_input_gets_a_clear_4xx_and_stores_nothing(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "standard")
    url = f"/webhooks/{public_id}"
    malformed = b'{"type": "contact.created", '
    response = client.post(url, data=malformed, headers=standard_headers(secret, malformed))
    assert response.status_code == 400 and response.json["error"] == "invalid_payload"
    body = fixture_bytes("standard-webhooks/payload.contact_created.full.json")
    wrong_type = {**standard_headers(secret, body), "Content-Type": "text/plain"}
    response = client.post(url, data=body, headers=wrong_type)
    assert response.status_code == 415 and "application/json" in response.json["message"]
    no_type = standard_headers(secret, body)
    del no_type["Content-Type"]
    assert client.post(url, data=body, headers=no_type).status_code == 415
    not_an_event = b'{"type": "x.y", "timestamp": "yesterday", "data": {"id": "u1"}}'
    response = client.post(url, data=not_an_event, headers=standard_headers(secret, not_an_event))
    assert response.status_code == 400 and "timestamp" in response.json["message"]
    assert client.post("/webhooks/cnosuchconnection", data=body).status_code == 404
    assert inbox(db, tenant.id) == []


def test_body_over_the_limit_is_413(
    settings: Settings, db: Database, redis_client: Redis, tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "standard")
    assert Settings().webhook_max_body_bytes == 1024 * 1024  # the default is 1 MiB
    small = replace(settings, webhook_max_body_bytes=2048)
    app: Flask = create_app(small, context=make_context(small, db, redis_client))
    client = app.test_client()
    big = json.dumps({"type": "a.b", "timestamp": "2026-01-01T00:00:00Z",
                      "data": {"id": "u", "pad": "x" * 4096}}).encode()  # fmt: skip
    response = client.post(
        f"/webhooks/{public_id}", data=big, headers=standard_headers(secret, big)
    )
    assert response.status_code == 413 and response.json["error"] == "payload_too_large"
    # Without a Content-Length (chunked), the limit still holds.
    response = client.post(f"/webhooks/{public_id}", input_stream=__import__("io").BytesIO(big),
                           headers=standard_headers(secret, big))  # fmt: skip
    assert response.status_code == 413
    assert inbox(db, tenant.id) == []


def test_moodle_token_in_body(client: FlaskClient, db: Database, tenant: TenantHandle) -> None:
    public_id, secret = connect(db, tenant.id, "moodle")
    data = fixture_json("moodle/local_webhooks.course_viewed.json")
    url = f"/webhooks/{public_id}"
    assert client.post(url, json=data).status_code == 401  # the published empty token
    assert client.post(url, json={**data, "token": secret + "x"}).status_code == 401
    ok = client.post(url, json={**data, "token": secret})
    assert ok.status_code == 200 and ok.json["accepted"] == 1
    (row,) = inbox(db, tenant.id)
    assert row.event_type == "moodle.core.course_viewed"  # unknown types are stored
    assert row.canonical["actor"]["id"] == f"{public_id}:2"
    assert row.status == "applied"


def test_canvas_raw_with_bearer_or_query_token(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "canvas", namespace="canvas-oxana")
    grade = fixture_bytes("canvas/raw/grade_change.json")
    url = f"/webhooks/{public_id}"
    assert client.post(url, data=grade, content_type="application/json").status_code == 401
    ok = client.post(url, data=grade, content_type="application/json",
                     headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert ok.status_code == 200
    asset = fixture_bytes("canvas/raw/asset_accessed.json")
    ok = client.post(f"{url}?token={secret}", data=asset, content_type="application/json")
    assert ok.status_code == 200
    rows = inbox(db, tenant.id)
    assert [r.event_type for r in rows] == ["assignment.graded", "canvas.asset_accessed"]
    assert rows[0].canonical["actor"]["id"] == "canvas-oxana:21070000000000048"
    jwt_without_jwks = client.post(url, data=b"a.b.c", content_type="application/jwt",
                                   headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert jwt_without_jwks.status_code == 401


def test_caliper_bearer_envelope(client: FlaskClient, db: Database, tenant: TenantHandle) -> None:
    public_id, secret = connect(db, tenant.id, "caliper")
    body = fixture_bytes("caliper/caliperEnvelopeEventBatch.json")
    url = f"/webhooks/{public_id}"
    assert client.post(url, data=body, content_type="application/json",
                       headers={"Authorization": "Bearer nope"}).status_code == 401  # fmt: skip
    ok = client.post(url, data=body, content_type="application/json",
                     headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert ok.status_code == 200 and ok.json["accepted"] == 3
    assert len(inbox(db, tenant.id)) == 3


def test_xapi_statements_with_basic_auth(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "xapi", identity="email")
    statements = [fixture_json("xapi/statement.attempted_with_result.json"),
                  fixture_json("xapi/statement.simplest_created.json")]  # fmt: skip
    url = f"/webhooks/{public_id}"
    assert client.post(url, json=statements, headers=basic(public_id, "wrong")).status_code == 401
    assert client.post(url, json=statements, headers=basic("someone", secret)).status_code == 401
    no_version = {"Authorization": basic(public_id, secret)["Authorization"]}
    assert client.post(url, json=statements, headers=no_version).status_code == 400
    ok = client.post(url, json=statements, headers=basic(public_id, secret))
    assert ok.status_code == 200
    assert ok.json == ["7ccd3322-e1a5-411a-a67d-6a735c76f119",
                       "12345678-1234-5678-1234-567812345678"]  # fmt: skip
    rows = inbox(db, tenant.id)
    assert rows[0].canonical["actor"] == {"email": "example.learner@adlnet.gov",
                                          "name": "Example Learner"}  # fmt: skip


def test_salesforce_ack_fault_and_owner_award(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    _load_example_rules(db, tenant.id)
    public_id, _ = connect(db, tenant.id, "salesforce", org_id=SF_ORG)
    url = f"/webhooks/{public_id}"
    body = fixture_bytes("salesforce/outbound_message.contact_notifications.xml")
    ok = client.post(url, data=body, content_type="text/xml; charset=utf-8")
    assert ok.status_code == 200 and ok.mimetype == "text/xml"
    assert b"<Ack>true</Ack>" in ok.data
    for _ in range(2):  # Salesforce retries until it has the Ack: applied once
        assert (
            client.post(url, data=opportunity_message(), content_type="text/xml").status_code == 200
        )
    assert _player_xp(db, tenant.id, f"{public_id}:user:0051I000000OWNRQAA") == 50
    other_org = client.post(url, data=opportunity_message("00D000000000001"),
                            content_type="text/xml")  # fmt: skip
    assert other_org.status_code == 401 and b"<soapenv:Fault>" in other_org.data
    assert b"OrganizationId" in other_org.data
    xxe = client.post(url, data=XXE, content_type="text/xml")
    assert xxe.status_code == 400 and b"faultstring" in xxe.data and b"root:" not in xxe.data
    assert client.post(url, data=body, content_type="application/json").status_code == 415
    assert [r.event_type for r in inbox(db, tenant.id)] == [
        "salesforce.contact_notified",
        "salesforce.contact_notified",
        "deal.won",
    ]


def test_secret_rotation_keeps_the_old_secret_for_the_overlap(
    app: Flask, client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    app.extensions["questline_webhooks"].seconds = 0  # no caching: see each rotation at once
    public_id, old = connect(db, tenant.id, "caliper")
    body = fixture_bytes("caliper/caliperEnvelopeEventSingle.json")
    url = f"/webhooks/{public_id}"

    def post(secret: str) -> int:
        return client.post(url, data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {secret}"}).status_code  # fmt: skip

    now = datetime.now(UTC)
    with db.session() as session:
        conn = session.scalar(
            select(WebhookConnection).where(WebhookConnection.public_id == public_id)
        )
        new = rotate_secret(session, conn, now, overlap=timedelta(hours=1))
    assert post(old) == 200 and post(new) == 200  # both during the overlap
    with db.session() as session:
        conn = session.scalar(
            select(WebhookConnection).where(WebhookConnection.public_id == public_id)
        )
        newest = rotate_secret(session, conn, now, overlap=timedelta(0))
    assert post(old) == 401 and post(new) == 401 and post(newest) == 200


def test_connections_are_tenant_scoped(
    client: FlaskClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    mine, secret = connect(db, tenant.id, "caliper")
    theirs, _ = connect(db, other_tenant.id, "caliper")
    body = fixture_bytes("caliper/caliperEnvelopeEventSingle.json")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.post(f"/webhooks/{theirs}", data=body, content_type="application/json",
                       headers=headers).status_code == 401  # my secret, their URL  # fmt: skip
    assert client.post(f"/webhooks/{mine}", data=body, content_type="application/json",
                       headers=headers).status_code == 200  # fmt: skip
    assert len(inbox(db, tenant.id)) == 1 and inbox(db, other_tenant.id) == []


def test_disabled_connection_is_404(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    public_id, secret = connect(db, tenant.id, "caliper")
    with db.session() as session:
        conn = session.scalar(
            select(WebhookConnection).where(WebhookConnection.public_id == public_id)
        )
        conn.disabled_at = datetime.now(UTC)
    response = client.post(f"/webhooks/{public_id}", data=b"{}", content_type="application/json",
                           headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert response.status_code == 404 and response.json["error"] == "unknown_connection"


@pytest.mark.parametrize("kind", ["canvas", "salesforce", "standard"])
def test_connection_options_are_validated(db: Database, tenant: TenantHandle, kind: str) -> None:
    from webhooks.connections import ConnectionError_

    with pytest.raises(ConnectionError_):
        connect(db, tenant.id, kind, secret="whsec_!!" if kind == "standard" else None,
                org_id="short" if kind == "salesforce" else None,
                jwks_url="ftp://x" if kind == "canvas" else None)  # fmt: skip


@pytest.mark.parametrize("value", ["u\u0000x", "\ud800"])
def test_unstorable_characters_are_a_400_not_a_500(
    client: FlaskClient, db: Database, tenant: TenantHandle, value: str
) -> None:
    public_id, secret = connect(db, tenant.id, "standard")
    body = json.dumps({"type": "a.b", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": value}})
    response = client.post(f"/webhooks/{public_id}", data=body.encode(),
                           headers=standard_headers(secret, body.encode()))  # fmt: skip
    assert response.status_code == 400
    assert inbox(db, tenant.id) == []
