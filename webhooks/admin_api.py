"""``/api/v1/webhooks``: what a tenant admin manages and reads about webhooks, with the tenant
API key (the admin credential until roles exist): outbound subscriptions, the delivery log, and
the inbound connections (never their secrets, which are shown once at creation).

The CLI (``questline connections``, ``questline webhooks``) does the same for operators; both
call the same functions in ``webhooks.outbound`` and ``webhooks.connections``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from questline.api import _int_arg, authenticate, ctx
from questline.errors import BadRequest, NotFound
from webhooks.connections import ConnectionInfo
from webhooks.models import WebhookConnection, WebhookSubscription
from webhooks.outbound import SubscriptionError, delivery_log, subscribe

bp = Blueprint("webhooks_admin", __name__, url_prefix="/api/v1/webhooks")


def _subscription(sub: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "url": sub.url,
        "events": list(sub.event_types or []),
        "enabled": sub.disabled_at is None,
        "created_at": sub.created_at.isoformat() if sub.created_at else None,
    }


@bp.get("/subscriptions")
def list_subscriptions() -> Any:
    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        subs = session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.tenant_id == tenant_id)
            .order_by(WebhookSubscription.id)
        ).all()
        return jsonify({"subscriptions": [_subscription(s) for s in subs]})


@bp.post("/subscriptions")
def create_subscription() -> Any:
    """Subscribe a URL; the answer carries the ``whsec_`` signing secret, shown only here."""
    tenant_id = authenticate()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest('send a JSON object {"url": ..., "events": [...]}')
    url, events = data.get("url"), data.get("events")
    if not isinstance(url, str) or not isinstance(events, list):
        raise BadRequest("url must be a string and events a list of event types")
    if not all(isinstance(e, str) for e in events):
        raise BadRequest("events must be strings")
    try:
        with ctx().db.session() as session:
            allow = ctx().settings.outbound_allow_private
            sub, secret = subscribe(session, tenant_id, url, events, allow_private=allow)
            body = {**_subscription(sub), "secret": secret}
    except SubscriptionError as exc:
        raise BadRequest(str(exc)) from None
    return jsonify(body), 201


@bp.delete("/subscriptions/<int:sub_id>")
def disable_subscription(sub_id: int) -> Any:
    """Stop a subscription; undelivered messages to it fail on their next attempt (logged)."""
    tenant_id = authenticate()
    with ctx().db.session() as session:
        sub = session.scalar(
            select(WebhookSubscription).where(
                WebhookSubscription.id == sub_id, WebhookSubscription.tenant_id == tenant_id
            )
        )
        if sub is None:
            raise NotFound("no such subscription")
        if sub.disabled_at is None:
            sub.disabled_at = datetime.now(UTC)
    return "", 204


@bp.get("/deliveries")
def deliveries() -> Any:
    """The latest outbound messages, newest first, each with every attempt it took."""
    tenant_id = authenticate()
    limit = _int_arg("limit", 50, 1, 500) or 50
    with ctx().db.sessions() as session:
        return jsonify({"deliveries": delivery_log(session, tenant_id, limit)})


@bp.get("/connections")
def connections() -> Any:
    """The inbound connections: kind, state and identity mapping; secrets are never listed."""
    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        rows = session.scalars(
            select(WebhookConnection)
            .where(WebhookConnection.tenant_id == tenant_id)
            .order_by(WebhookConnection.id)
        ).all()
        out = []
        for conn in rows:
            info = ConnectionInfo(conn.id, conn.public_id, conn.tenant_id, conn.kind, conn.config)
            out.append(
                {
                    "id": conn.public_id,
                    "kind": conn.kind,
                    "label": conn.label,
                    "url": f"/webhooks/{conn.public_id}",
                    "enabled": conn.disabled_at is None,
                    "identity": info.identity,
                    "namespace": info.namespace,
                }
            )
        return jsonify({"connections": out})
