"""Small helpers for the webhook tests: fixtures on disk, connections, signed requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from questline.db import Database
from questline.models import InboxEvent
from webhooks.connections import ConnectionInfo, create_connection
from webhooks.signatures import hubspot_v3, standard_sign

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def info(kind: str, **config: Any) -> ConnectionInfo:
    """A connection as receivers see it, without a database (for parser tests)."""
    config.setdefault("identity", "id")
    return ConnectionInfo(1, "cfixture", 1, kind, config, ("s3cret",))


def connect(db: Database, tenant_id: int, kind: str, **options: Any) -> tuple[str, str]:
    """Create a connection in the test database; return (public id, secret)."""
    with db.session() as session:
        conn, secret = create_connection(session, tenant_id, kind, **options)
        return conn.public_id, secret


def inbox(db: Database, tenant_id: int) -> list[InboxEvent]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(InboxEvent).where(InboxEvent.tenant_id == tenant_id).order_by(InboxEvent.id)
            )
        )


def hubspot_headers(secret: str, url: str, body: bytes, *, at_ms: int | None = None) -> dict:
    stamp = str(at_ms if at_ms is not None else int(time.time() * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": stamp,
        "X-HubSpot-Signature-v3": hubspot_v3(secret, "POST", url, body, stamp),
    }


def standard_headers(
    secret: str, body: bytes, msg_id: str = "msg_1", *, at: int | None = None
) -> dict:
    stamp = str(at if at is not None else int(time.time()))
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_sign(secret, msg_id, stamp, body),
    }


def basic(user: str, password: str) -> dict:
    blob = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {blob}", "X-Experience-API-Version": "1.0.3"}


class Receiver:
    """A loopback HTTP endpoint that answers the next statuses in ``plan`` and keeps requests."""

    def __init__(self) -> None:
        self.plan: list[int] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.plan.pop(0) if outer.plan else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    """A running ``Receiver``, shut down afterwards."""
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def verify_standard(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check written from the spec, independent of our signer."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return f"v1,{expected}" in headers["webhook-signature"].split(" ")
