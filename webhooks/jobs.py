"""RQ entry point for outbound delivery: thin, builds nothing but the context, then delivers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workers.context import worker_context


def deliver_outbound() -> dict[str, Any]:
    """Deliver the due outbound messages once (the scheduler or ``webhooks deliver`` queues it)."""
    from webhooks.outbound import deliver_due

    stats = deliver_due(worker_context().db, datetime.now(UTC))
    return {"delivered": stats.delivered, "retrying": stats.retrying, "failed": stats.failed}


def enqueue_delivery(ctx: Any) -> None:
    """Queue one delivery run on the RQ queue (with Redis) or run it inline (embedded)."""
    if ctx.settings.embedded:
        from webhooks.outbound import deliver_due

        deliver_due(ctx.db, datetime.now(UTC))
        return
    from rq import Queue

    Queue(ctx.settings.queue_name, connection=ctx.redis).enqueue(
        "webhooks.jobs.deliver_outbound", job_timeout=300, result_ttl=600
    )
