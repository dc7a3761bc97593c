"""Platform operators: the people who run a Questline installation for every tenant on it.

An operator is not a tenant role. A tenant admin's powers stop at their tenant's edge; an
operator sees across tenants, but only what running the service needs: health, metrics, the
tenants with their sizes and queue depths, and the failed events (ids, sources, types, errors),
never a learner's name, email, identities or event bodies. Reading or changing a tenant's people
stays with that tenant's admins (and, for erasure requests, with the server's shell: the CLI).

The simplest honest grant: an operator key. ``questline operators new-key`` prints a fresh key
(``qlop_...``) and its SHA-256 digest; the digest goes into ``QUESTLINE_OPERATOR_KEY_HASHES``
(comma-separated), the key to the operator or the monitoring system. Only digests live in the
configuration, so a leaked environment does not leak a key; revoking is removing the digest and
restarting. There is no database table: operators are part of the deployment, not of any tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import func, select

from identity.errors import Forbidden
from questline.errors import BadRequest, Unauthorized
from questline.models import InboxEvent, Player, Tenant

OPERATOR_PREFIX = "qlop_"
FAILED_LIMIT = 500

bp = Blueprint("identity_ops", __name__, url_prefix="/api/v1/ops")


def new_operator_key() -> tuple[str, str]:
    """A fresh operator key and the digest to put in QUESTLINE_OPERATOR_KEY_HASHES."""
    key = OPERATOR_PREFIX + secrets.token_urlsafe(32)
    return key, key_digest(key)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_operator_key(key: str, digests: tuple[str, ...]) -> bool:
    """Constant-time against every configured digest (no early exit on the first match)."""
    digest = key_digest(key)
    found = False
    for known in digests:
        found |= hmac.compare_digest(digest, known)
    return found


def require_operator() -> None:
    """401 without an operator key; 403 for any tenant credential (a tenant admin included)."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise Unauthorized("send 'Authorization: Bearer <operator key>'")
    if not credential.startswith(OPERATOR_PREFIX):
        raise Forbidden("this is for platform operators; tenant credentials stay in their tenant")
    settings = current_app.extensions["questline"].settings
    if not is_operator_key(credential, settings.operator_key_hashes):
        raise Unauthorized("unknown or revoked operator key")


def _db() -> Any:
    return current_app.extensions["questline"].db


@bp.get("/health")
def health() -> Any:
    """The same checks as the public ``/healthz``, for tools that only hold an operator key."""
    require_operator()
    from questline.ops import healthz

    return healthz()


@bp.get("/metrics")
def metrics() -> Any:
    require_operator()
    from questline.ops import metrics_endpoint

    return metrics_endpoint()


@bp.get("/tenants")
def tenants() -> Any:
    """Every tenant with its size and inbox state: what capacity and support questions need."""
    require_operator()
    with _db().sessions() as session:
        players = dict(
            session.execute(select(Player.tenant_id, func.count()).group_by(Player.tenant_id)).all()
        )
        inbox: dict[int, dict[str, int]] = {}
        for tenant_id, status, n in session.execute(
            select(InboxEvent.tenant_id, InboxEvent.status, func.count()).group_by(
                InboxEvent.tenant_id, InboxEvent.status
            )
        ):
            inbox.setdefault(tenant_id, {})[status] = int(n)
        rows = session.scalars(select(Tenant).order_by(Tenant.id)).all()
        out = [
            {
                "id": t.id,
                "name": t.name,
                "timezone": t.timezone,
                "players": int(players.get(t.id, 0)),
                "inbox": inbox.get(t.id, {}),
            }
            for t in rows
        ]
    return jsonify({"tenants": out})


@bp.get("/events/failed")
def failed_events() -> Any:
    """The dead-letter list across tenants: enough to triage (source, type, error type,
    attempts), not the event's body, actor or full error message, which can hold a learner's
    data; ``questline events failed`` on the server shows those."""
    require_operator()
    raw_limit = request.args.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= FAILED_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {FAILED_LIMIT}")
    with _db().sessions() as session:
        rows = session.scalars(
            select(InboxEvent)
            .where(InboxEvent.status == "failed")
            .order_by(InboxEvent.id.desc())
            .limit(int(raw_limit))
        ).all()
        out = [
            {
                "id": e.id,
                "tenant_id": e.tenant_id,
                "source": e.source,
                "type": e.event_type,
                "attempts": e.attempts,
                # The exception's type only: its message may quote an actor or a body.
                "error": (e.last_error or "").split(":", 1)[0] or None,
                "received_at": e.received_at.isoformat(),
            }
            for e in rows
        ]
    return jsonify({"events": out})
