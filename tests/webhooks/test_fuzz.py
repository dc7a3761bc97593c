"""hypothesis throws random bytes and mutated fixtures at every receiver: never a 5xx.

Mutated bodies are correctly authenticated for their kind (signed, or carrying the token), so
the fuzzing reaches the parsers and not only the signature check.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from questline.db import Database
from tests.conftest import TenantHandle
from tests.webhooks.helpers import connect, fixture_bytes, hubspot_headers, standard_headers
from tests.webhooks.test_normalize import SF_ORG, opportunity_message

FUZZ = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FIXTURES: dict[str, list[str]] = {
    "moodle": ["moodle/local_webhooks.course_viewed.json"],
    "canvas": ["canvas/raw/grade_change.json", "canvas/raw/course_completed.json",
               "canvas/raw/submission_created.json"],
    "canvas-caliper": ["canvas/caliper/grade_change.json", "canvas/caliper/logged_in.json"],
    "caliper": ["caliper/caliperEnvelopeEventBatch.json", "caliper/caliperEventGradeGraded.json"],
    "xapi": ["xapi/statement.attempted_with_result.json", "xapi/statement.attended_full.json"],
    "hubspot": ["hubspot/webhook_batch.docs_example.json"],
    "standard": ["standard-webhooks/payload.contact_created.full.json"],
}  # fmt: skip

# Values PostgreSQL or the parsers could choke on: NUL, lone surrogates, huge numbers, odd dates.
NASTY = st.sampled_from(
    ["\x00", "a\u0000b", "\ud800", "\udfff x", "", " ", "9" * 400, "2026-13-45T99:99:99Z",
     "1970-01-01T00:00:00", "-1", "urn:instructure:canvas:user:", "\\core\\event\\", "a" * 600]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**15, max_value=10**30)
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | NASTY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=6,
)  # fmt: skip


def mutate(value: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Keep, replace or drop parts of a JSON document, at any depth."""
    action = data.draw(st.sampled_from(["keep", "keep", "recurse", "replace"]))
    if action == "replace" or depth > 6:
        return data.draw(JSON_VALUES) if action == "replace" else value
    if action == "recurse" and isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not data.draw(st.booleans().map(lambda b: b or depth > 0)):
                continue  # dropped key
            out[key] = mutate(item, data, depth + 1)
        return out
    if action == "recurse" and isinstance(value, list):
        return [mutate(item, data, depth + 1) for item in value]
    return value


Auth = Callable[[bytes], dict[str, str]]


def _auth(kind: str, public_id: str, secret: str) -> tuple[Auth, Callable[[Any], Any]]:
    """(headers for a body, a transform applied to the JSON before sending)."""
    url = f"http://localhost/webhooks/{public_id}"
    json_type = {"Content-Type": "application/json"}
    if kind == "hubspot":
        return (lambda body: hubspot_headers(secret, url, body)), (lambda d: d)
    if kind == "standard":
        return (lambda body: standard_headers(secret, body, "msg_fuzz")), (lambda d: d)
    if kind == "xapi":
        blob = base64.b64encode(f"{public_id}:{secret}".encode()).decode()
        return (lambda body: {**json_type, "Authorization": f"Basic {blob}",
                              "X-Experience-API-Version": "1.0.3"}), (lambda d: d)  # fmt: skip
    if kind == "moodle":
        return (lambda body: json_type), (
            lambda d: {**d, "token": secret} if isinstance(d, dict) else d
        )
    return (lambda body: {**json_type, "Authorization": f"Bearer {secret}"}), (lambda d: d)


@pytest.mark.parametrize("kind", sorted(FIXTURES))
def test_mutated_fixtures_never_5xx(
    client: FlaskClient, db: Database, tenant: TenantHandle, kind: str
) -> None:
    public_id, secret = connect(db, tenant.id, kind)
    headers_for, prepare = _auth(kind, public_id, secret)
    documents = [json.loads(fixture_bytes(name)) for name in FIXTURES[kind]]

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        document = data.draw(st.sampled_from(documents))
        body = json.dumps(prepare(mutate(document, data))).encode()
        response = client.post(f"/webhooks/{public_id}", data=body, headers=headers_for(body))
        assert response.status_code < 500, (response.status_code, response.data[:300], body[:300])

    run()


@pytest.mark.parametrize("kind", [*sorted(FIXTURES), "salesforce"])
def test_random_bytes_never_5xx(
    client: FlaskClient, db: Database, tenant: TenantHandle, kind: str
) -> None:
    options = {"org_id": SF_ORG} if kind == "salesforce" else {}
    public_id, secret = connect(db, tenant.id, kind, **options)
    headers_for, _ = _auth(kind, public_id, secret)
    media = "text/xml" if kind == "salesforce" else "application/json"

    @FUZZ
    @given(body=st.binary(max_size=2000))
    def run(body: bytes) -> None:
        headers = {**headers_for(body), "Content-Type": media}
        response = client.post(f"/webhooks/{public_id}", data=body, headers=headers)
        assert response.status_code < 500, (response.status_code, response.data[:300])

    run()


def test_mutated_salesforce_xml_never_5xx(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    public_id, _ = connect(db, tenant.id, "salesforce", org_id=SF_ORG)
    sources = [fixture_bytes("salesforce/outbound_message.contact_notifications.xml"),
               opportunity_message()]  # fmt: skip

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        body = bytearray(data.draw(st.sampled_from(sources)))
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(body) - 1))
            body[at] = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()):
            cut = data.draw(st.integers(0, len(body)))
            body = body[:cut]
        response = client.post(f"/webhooks/{public_id}", data=bytes(body), content_type="text/xml")
        assert response.status_code < 500, (response.status_code, response.data[:300])
        assert response.mimetype == "text/xml"  # a SOAP Ack or Fault, always

    run()
