"""Outbound webhooks: tenants subscribe URLs to Questline's own events.

``record`` writes outbox rows inside the caller's transaction (the award transaction), so an award
and its notification cannot disagree (ARCHITECTURE invariant 9). ``deliver_due`` is the job: it
leases due rows, POSTs each signed per Standard Webhooks (``webhook-id`` stays the same across
retries, so the receiver can dedupe), logs every attempt, and on failure schedules the next try
with exponential backoff until the attempts run out (then ``failed``, visible in the log).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.decisions import BadgeAwarded, LevelReached, StreakUpdated
from questline.db import Database
from questline.ingest import upsert_ignore
from webhooks.connections import new_secret
from webhooks.egress import EgressRefused, check_destination, check_url
from webhooks.models import WebhookDeliveryAttempt, WebhookOutbox, WebhookSubscription
from webhooks.signatures import standard_sign

EVENT_TYPES = (
    "badge.awarded", "level.reached", "streak.extended", "quest.completed", "league.finished",
    "streak.at_risk", "badge.near", "league.at_risk",  # nudges (widgets/nudge_scan.py, issue 7)
)  # fmt: skip
MAX_ATTEMPTS = 8
BASE_BACKOFF_SECONDS = 30
LEASE_SECONDS = 60  # a claimed row is retried by another run if this one dies mid-delivery
TIMEOUT_SECONDS = 5.0


class SubscriptionError(ValueError):
    """A subscription cannot be created as asked (bad URL or event type)."""


def subscribe(
    session: Session,
    tenant_id: int,
    url: str,
    event_types: list[str],
    *,
    allow_private: bool = False,
) -> tuple[WebhookSubscription, str]:
    """Subscribe ``url`` to ``event_types``; return the subscription and its signing secret.
    ``allow_private``: QUESTLINE_OUTBOUND_ALLOW_PRIVATE (see ``webhooks.egress``)."""
    if not url.startswith(("https://", "http://")) or len(url) > 2000:
        raise SubscriptionError("the URL must be http(s) and at most 2000 characters")
    try:
        check_url(url, allow_private=allow_private)
    except EgressRefused as exc:
        raise SubscriptionError(str(exc)) from None
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown or not event_types:
        raise SubscriptionError(f"event types are {', '.join(EVENT_TYPES)}; not {unknown}")
    secret = new_secret("standard")
    sub = WebhookSubscription(
        tenant_id=tenant_id, url=url, event_types=sorted(set(event_types)), secret=secret
    )
    session.add(sub)
    session.flush()
    return sub, secret


@dataclass(frozen=True)
class Outbound:
    """One fact to announce: an ``EVENT_TYPES`` name, its JSON payload, and an idempotency key
    (the award's own key, so re-running the award transaction announces nothing twice)."""

    event_type: str
    payload: dict[str, Any]
    key: str


def outbound_for(player_id: int, event_id: str, decision: object) -> Outbound | None:
    """The message an applied engine decision announces, if any, keyed so a re-run of the same
    award writes nothing new: badge.awarded, level.reached, streak.extended (a streak that
    continued to a second or later day; a streak starting over at 1 is not announced).

    ``quest.completed`` and ``league.finished`` come from the quest and league code, which build
    ``Outbound`` themselves (keys ``quest:<player>:<quest>:<period>``, ``league:<league id>``).
    """
    if isinstance(decision, BadgeAwarded):
        payload: dict[str, Any] = {
            "player_id": player_id, "badge_id": decision.badge_id, "name": decision.name,
            "tier": decision.tier, "tier_name": decision.tier_name, "course": decision.course,
            "awarded_at": decision.awarded_at.isoformat(), "event_id": event_id,
        }  # fmt: skip
        return Outbound("badge.awarded", payload, f"badge:{decision.idempotency_key}")
    if isinstance(decision, LevelReached):
        payload = {"player_id": player_id, "level": decision.level, "previous": decision.previous,
                   "event_id": event_id}  # fmt: skip
        return Outbound("level.reached", payload, f"level:{player_id}:{decision.level}")
    if isinstance(decision, StreakUpdated) and decision.current >= 2:
        day = decision.last_day.isoformat()
        payload = {"player_id": player_id, "days": decision.current,
                   "longest": decision.longest, "day": day, "event_id": event_id}  # fmt: skip
        return Outbound("streak.extended", payload, f"streak:{player_id}:{day}")
    return None


def record(
    session: Session,
    tenant_id: int,
    event_type: str,
    payload: dict[str, Any],
    key: str,
    *,
    now: datetime | None = None,
) -> int:
    """Write one outbox row per subscription of the tenant that wants ``event_type``.

    Call it inside the transaction that made the fact true; ``key`` (e.g. the award's
    idempotency key) makes a replay write nothing new. Returns the number of rows written.
    """
    return record_many(session, tenant_id, [Outbound(event_type, payload, key)], now=now)


def record_many(
    session: Session,
    tenant_id: int,
    messages: list[Outbound],
    *,
    now: datetime | None = None,
) -> int:
    """``record`` for a whole batch: one query for the subscriptions, one INSERT for the rows.

    Meant for the award transaction (workers/process.py), which produces many facts per batch;
    a tenant without subscriptions costs a single indexed SELECT. Returns the rows written.
    """
    unknown = sorted({m.event_type for m in messages} - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown outbound event type {unknown[0]!r}")
    if not messages:
        return 0
    subs = session.execute(
        select(WebhookSubscription.id, WebhookSubscription.event_types).where(
            WebhookSubscription.tenant_id == tenant_id, WebhookSubscription.disabled_at.is_(None)
        )
    ).all()
    if not subs:
        return 0
    at = now or session.scalar(select(_now_sql()))
    rows = [
        {
            "tenant_id": tenant_id,
            "subscription_id": sub_id,
            "key": m.key[:255],
            "message_id": "msg_" + hashlib.sha256(f"{sub_id}/{m.key}".encode()).hexdigest()[:32],
            "event_type": m.event_type,
            "payload": m.payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        for sub_id, types in subs
        for m in messages
        if m.event_type in (types or [])
    ]
    if not rows:
        return 0
    stmt = upsert_ignore(session, WebhookOutbox).returning(WebhookOutbox.id)
    return len(session.execute(stmt, rows).all())


def _now_sql() -> Any:
    from sqlalchemy import func

    return func.now()


@dataclass
class DeliveryStats:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _claim(db: Database, now: datetime, limit: int) -> list[int]:
    """Lease due rows (pushing their next attempt past the lease) and return their ids."""
    with db.session() as session:
        due = (
            select(WebhookOutbox.id)
            .where(WebhookOutbox.status == "pending", WebhookOutbox.next_attempt_at <= now)
            .order_by(WebhookOutbox.id)
            .limit(limit)
        )
        if db.is_postgres:
            due = due.with_for_update(skip_locked=True)
        ids = list(session.scalars(due))
        if ids:
            session.execute(
                update(WebhookOutbox)
                .where(WebhookOutbox.id.in_(ids))
                .values(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
            )
        return ids


def backoff(attempts: int, base: int = BASE_BACKOFF_SECONDS) -> timedelta:
    """30 s, 1 min, 2 min, 4 min ... capped at 6 hours."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 6 * 3600))


def deliver_due(
    db: Database,
    now: datetime,
    *,
    http: requests.Session | None = None,
    limit: int = 100,
    max_attempts: int = MAX_ATTEMPTS,
    allow_private: bool = False,
) -> DeliveryStats:
    """Deliver every due message once; record each attempt; schedule retries with backoff.
    A URL leading to a non-public address is not called (``webhooks.egress``): the attempt
    is recorded as failed with the reason, and retried like any other failure."""
    stats = DeliveryStats()
    client = http or requests.Session()
    for outbox_id in _claim(db, now, limit):
        with db.sessions() as session:
            row = session.get(WebhookOutbox, outbox_id)
            sub = session.get(WebhookSubscription, row.subscription_id) if row else None
            if row is None or sub is None:
                continue
            body = json.dumps(
                {"type": row.event_type, "timestamp": row.created_at.isoformat(),
                 "data": row.payload},
                separators=(",", ":"),
            ).encode()  # fmt: skip
            url, secret, message_id = sub.url, sub.secret, row.message_id
            disabled = sub.disabled_at is not None
        status_code, error, started = None, None, time.perf_counter()
        if disabled:
            error = "subscription disabled"
        elif (refused := _refusal(url, allow_private)) is not None:
            error = refused
        else:
            stamp = str(int(now.timestamp()))
            headers = {
                "Content-Type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": stamp,
                "webhook-signature": standard_sign(secret, message_id, stamp, body),
            }
            try:
                response = client.post(
                    url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
                )
                status_code = response.status_code
                if not 200 <= status_code < 300:
                    error = f"HTTP {status_code}"
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {str(exc)[:300]}"
        elapsed = int((time.perf_counter() - started) * 1000)
        with db.session() as session:
            row = session.get(WebhookOutbox, outbox_id)
            assert row is not None
            row.attempts += 1
            if error is None:
                row.status, row.delivered_at = "delivered", now
                stats.delivered += 1
            elif row.attempts >= max_attempts or disabled:
                row.status = "failed"
                stats.failed += 1
            else:
                row.next_attempt_at = now + backoff(row.attempts)
                stats.retrying += 1
            session.add(
                WebhookDeliveryAttempt(
                    tenant_id=row.tenant_id, outbox_id=outbox_id, attempted_at=now,
                    status_code=status_code, error=error, duration_ms=elapsed,
                )
            )  # fmt: skip
    return stats


def _refusal(url: str, allow_private: bool) -> str | None:
    try:
        check_destination(url, allow_private=allow_private)
    except EgressRefused as exc:
        return f"refused: {exc}"
    return None


def delivery_log(session: Session, tenant_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The latest messages of a tenant with their attempts, newest first (for admins)."""
    rows = session.scalars(
        select(WebhookOutbox)
        .where(WebhookOutbox.tenant_id == tenant_id)
        .order_by(WebhookOutbox.id.desc())
        .limit(limit)
    ).all()
    attempts: dict[int, list[dict[str, Any]]] = {}
    if rows:
        for a in session.scalars(
            select(WebhookDeliveryAttempt)
            .where(WebhookDeliveryAttempt.outbox_id.in_([r.id for r in rows]))
            .order_by(WebhookDeliveryAttempt.id)
        ):
            attempts.setdefault(a.outbox_id, []).append(
                {"at": a.attempted_at.isoformat(), "status": a.status_code, "error": a.error,
                 "ms": a.duration_ms}
            )  # fmt: skip
    return [
        {"id": r.id, "message_id": r.message_id, "type": r.event_type, "status": r.status,
         "attempts": r.attempts, "next_attempt_at": r.next_attempt_at.isoformat(),
         "log": attempts.get(r.id, [])}
        for r in rows
    ]  # fmt: skip
