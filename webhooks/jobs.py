"""RQ entry points for outbound delivery: thin, they build nothing but the context, then deliver.

``wake_delivery`` is the scheduler's duty (one cheap query per tick): when outbox rows are due it
queues one ``deliver_outbound`` job, and a Redis flag keeps it from queueing another while that
one waits, the same way the inbox dispatcher wakes workers. The outbox row, not the job, is what
guarantees delivery: a lost job is simply queued again on a later tick.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from workers.context import worker_context

FLAG_TTL_SECONDS = 300  # a job lost before it ran stops blocking new ones after this


def flag_key(prefix: str) -> str:
    return f"{prefix}:webhooks:deliver"


def deliver_outbound() -> dict[str, Any]:
    """Deliver the due outbound messages once (queued by ``wake_delivery``)."""
    from webhooks.outbound import deliver_due

    ctx = worker_context()
    ctx.redis.delete(flag_key(ctx.settings.redis_prefix))  # rows recorded from now on re-wake
    stats = deliver_due(
        ctx.db, datetime.now(UTC), allow_private=ctx.settings.outbound_allow_private
    )
    return {"delivered": stats.delivered, "retrying": stats.retrying, "failed": stats.failed}


def due_outbound(ctx: Any, now: datetime) -> bool:
    """Whether any outbox row is due (an index-only probe on ``ix_webhook_outbox_due``)."""
    from webhooks.models import WebhookOutbox

    with ctx.db.sessions() as session:
        probe = (
            select(WebhookOutbox.id)
            .where(WebhookOutbox.status == "pending", WebhookOutbox.next_attempt_at <= now)
            .limit(1)
        )
        return session.scalar(probe) is not None


def wake_delivery(ctx: Any, now: datetime | None = None) -> bool:
    """Queue a delivery run if messages are due and none is waiting; True if messages are due.

    Embedded (no Redis server) it delivers inline instead, as the inbox dispatcher does."""
    now = now or datetime.now(UTC)
    if not due_outbound(ctx, now):
        return False
    enqueue_delivery(ctx)
    return True


def enqueue_delivery(ctx: Any) -> None:
    """Queue one delivery run on the RQ queue (with Redis) or run it inline (embedded)."""
    if ctx.settings.embedded:
        from webhooks.outbound import deliver_due

        deliver_due(ctx.db, datetime.now(UTC), allow_private=ctx.settings.outbound_allow_private)
        return
    if not ctx.redis.set(flag_key(ctx.settings.redis_prefix), b"1", nx=True, ex=FLAG_TTL_SECONDS):
        return  # a run is already queued
    from rq import Queue, Retry

    Queue(ctx.settings.queue_name, connection=ctx.redis).enqueue(
        "webhooks.jobs.deliver_outbound",
        job_timeout=300,
        result_ttl=600,
        failure_ttl=7 * 24 * 3600,
        retry=Retry(max=3, interval=[5, 30, 120]),
    )
