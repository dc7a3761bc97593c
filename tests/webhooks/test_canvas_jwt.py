"""Canvas signed-JWT delivery verified against a JWKS served on loopback.

The JWKS is served by a real HTTP server on 127.0.0.1 (as Canvas publishes its keys at a URL);
the token is signed with a freshly generated RSA key, with ``kid`` naming the key in the set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient

from questline.db import Database
from tests.conftest import TenantHandle
from tests.webhooks.helpers import connect, fixture_json, inbox


def _rsa() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def canvas_keys() -> Iterator[tuple[Any, str]]:
    """(private key, JWKS URL) for a JWKS server on a free loopback port."""
    key = _rsa()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "canvas-2026-11", "use": "sig", "alg": "RS256"}]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield key, f"http://127.0.0.1:{server.server_port}/main/jwks"
    server.shutdown()
    server.server_close()


def _sign(claims: dict, key: Any, kid: str = "canvas-2026-11") -> bytes:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}).encode()


def test_signed_raw_event_verifies_against_the_jwks(
    client: FlaskClient, db: Database, tenant: TenantHandle, canvas_keys: tuple[Any, str]
) -> None:
    key, url = canvas_keys
    public_id, _ = connect(db, tenant.id, "canvas", jwks_url=url)
    token = _sign(fixture_json("canvas/raw/submission_created.json"), key)
    response = client.post(f"/webhooks/{public_id}", data=token, content_type="application/jwt")
    assert response.status_code == 200, response.json
    (row,) = inbox(db, tenant.id)
    assert row.raw == token.decode() and row.event_type == "assignment.submitted"
    assert row.canonical["actor"]["id"] == f"{public_id}:21070000000014012"


def test_signed_caliper_envelope(
    client: FlaskClient, db: Database, tenant: TenantHandle, canvas_keys: tuple[Any, str]
) -> None:
    key, url = canvas_keys
    public_id, _ = connect(db, tenant.id, "canvas-caliper", jwks_url=url)
    token = _sign(fixture_json("canvas/caliper/grade_change.json"), key)
    response = client.post(f"/webhooks/{public_id}", data=token, content_type="text/plain")
    assert response.status_code == 200
    assert inbox(db, tenant.id)[0].canonical["actor"]["id"] == f"{public_id}:21070000000000048"


def test_forged_unknown_kid_and_unsigned_are_refused(
    client: FlaskClient, db: Database, tenant: TenantHandle, canvas_keys: tuple[Any, str]
) -> None:
    key, url = canvas_keys
    public_id, secret = connect(db, tenant.id, "canvas", jwks_url=url)
    event = fixture_json("canvas/raw/grade_change.json")
    target = f"/webhooks/{public_id}"
    forged = _sign(event, _rsa())  # right kid, wrong key
    assert client.post(target, data=forged, content_type="application/jwt").status_code == 401
    unknown = _sign(event, key, kid="someone-else")
    assert client.post(target, data=unknown, content_type="application/jwt").status_code == 401
    hs256 = jwt.encode(event, "g" * 32, algorithm="HS256", headers={"kid": "canvas-2026-11"})
    assert client.post(target, data=hs256, content_type="application/jwt").status_code == 401
    # With a JWKS configured, plain JSON (even with the connection's bearer secret) is refused.
    plain = client.post(target, json=event, headers={"Authorization": f"Bearer {secret}"})
    assert plain.status_code == 401
    assert inbox(db, tenant.id) == []


def test_unreachable_jwks_is_a_503_so_canvas_retries(
    client: FlaskClient, db: Database, tenant: TenantHandle, canvas_keys: tuple[Any, str]
) -> None:
    key, _ = canvas_keys
    public_id, _ = connect(db, tenant.id, "canvas", jwks_url="http://127.0.0.1:1/jwks")
    token = _sign(fixture_json("canvas/raw/grade_change.json"), key)
    response = client.post(f"/webhooks/{public_id}", data=token, content_type="application/jwt")
    assert response.status_code == 503
    assert inbox(db, tenant.id) == []
