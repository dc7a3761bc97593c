"""``POST /webhooks/<connection>``: verify the raw bytes, parse, store durably, answer fast.

The four steps in order: look the connection up, read at most the body limit (413 beyond), check
the content type (415), hand the raw delivery to the connection kind's receiver (401 for bad
authentication, 400 for unreadable content), store every event in the inbox in one committed
statement (or one transaction when the receiver also wrote), and only then acknowledge and wake
the workers. Duplicates are acknowledged and not
stored again (the inbox is unique per tenant, source and key). Each refusal is logged.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from questline import metrics
from questline.errors import PayloadTooLarge, QuestlineError
from questline.ingest import IngestReport, store_events
from webhooks import salesforce
from webhooks.connections import ConnectionCache
from webhooks.delivery import Delivery
from webhooks.errors import UnknownConnection, UnsupportedMediaType
from webhooks.receivers import RECEIVERS
from workers.context import Context

log = logging.getLogger("questline.webhooks")
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.record_once
def _setup(state: Any) -> None:
    # One connection cache per app, so two apps in one process never share secrets.
    state.app.extensions["questline_webhooks"] = ConnectionCache()


def _ctx() -> Context:
    return current_app.extensions["questline"]  # type: ignore[no-any-return]


def _url() -> str:
    """The URL the sender called (HubSpot signs it): the public base when one is configured."""
    base = _ctx().settings.public_url
    if base:
        query = request.query_string.decode("latin-1")
        return base.rstrip("/") + request.path + (f"?{query}" if query else "")
    return request.url


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    request.max_content_length = limit  # also bounds chunked bodies without a length
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    return body


@bp.post("/<public_id>")
def receive(public_id: str) -> Any:
    started = time.perf_counter()
    received_at = datetime.now(UTC)
    kind = None
    try:
        cache = current_app.extensions["questline_webhooks"]
        conn = cache.get(_ctx().db.sessions, public_id[:64], received_at)
        if conn is None:
            raise UnknownConnection("no webhook connection at this URL")
        kind, g.tenant_id = conn.kind, conn.tenant_id
        receiver = RECEIVERS[conn.kind]
        body = _read_body(_ctx().settings.webhook_max_body_bytes)
        media = (request.mimetype or "").lower()
        if media not in receiver.content_types:
            raise UnsupportedMediaType(
                f"send Content-Type {' or '.join(receiver.content_types)}, not {media or 'none'}"
            )
        delivery = Delivery(
            method=request.method,
            url=_url() if conn.kind == "hubspot" else request.path,  # only HubSpot signs it
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_at=received_at,
            query=request.args.to_dict(),
        )
        report = IngestReport()
        raw = delivery.text
        db = _ctx().db
        with ExitStack() as stack:
            opened: list[Session] = []

            def open_session() -> Session:
                if not opened:
                    opened.append(stack.enter_context(db.session()))
                return opened[0]

            events = receiver.receive(delivery, conn, open_session)
            rows = [(e, raw) for e in events]
            if opened:  # lookups or writes that must commit with the events (HubSpot owners)
                store_events(opened[0], conn.tenant_id, rows, received_at, report)
            else:  # one INSERT that commits by itself: a single round trip
                with db.autocommit() as connection:
                    store_events(connection, conn.tenant_id, rows, received_at, report)
        # Committed: only now acknowledge and wake the workers.
    except QuestlineError as exc:
        log.warning(
            "webhook refused",
            extra={"tenant_id": getattr(g, "tenant_id", None), "connection": public_id[:64],
                   "kind": kind, "status": exc.status, "reason": exc.message},
        )  # fmt: skip
        metrics.EVENTS_REJECTED.inc()
        if kind == "salesforce":
            return Response(salesforce.fault(exc.message), exc.status, mimetype="text/xml")
        raise
    if report.inbox_ids:
        try:
            _ctx().dispatcher.wake()
        except Exception:
            log.error(
                "could not wake workers; webhook events wait for the sweep",
                exc_info=True,
                extra={"tenant_id": conn.tenant_id, "events": len(report.inbox_ids)},
            )
    metrics.EVENTS_RECEIVED.labels(source=f"webhook:{conn.kind}").inc(len(report.accepted))
    if report.duplicates:
        metrics.EVENTS_DUPLICATE.inc(len(report.duplicates))
    rejected: list[dict[str, Any]] = getattr(events, "rejected", [])
    if rejected:
        # The readable items are stored; the unreadable ones applied nothing and are named here.
        log.warning(
            "webhook items refused",
            extra={"tenant_id": conn.tenant_id, "connection": conn.public_id, "kind": conn.kind,
                   "rejected": rejected[:20], "stored": len(report.accepted)},
        )  # fmt: skip
        metrics.EVENTS_REJECTED.inc(len(rejected))
    metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
    return _acknowledge(conn.kind, report, [e.id for e in events], rejected)


def _acknowledge(
    kind: str, report: IngestReport, keys: list[str], rejected: list[dict[str, Any]]
) -> Any:
    if kind == "salesforce":
        return Response(salesforce.ACK, 200, mimetype="text/xml")
    if kind == "xapi":
        return jsonify(keys), 200  # an LRS answers a POST with the statement ids
    body: dict[str, Any] = {"accepted": len(report.accepted), "duplicates": len(report.duplicates)}
    if rejected:
        body["rejected"] = rejected
    return jsonify(body), 200
