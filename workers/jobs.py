"""RQ job entry points. Thin: they take no ORM objects, only build the context and drain."""

from __future__ import annotations

from typing import Any

from workers.context import worker_context
from workers.queue import wake_key

DRAIN_TIME_BUDGET_SECONDS = 10.0


def drain_inbox() -> dict[str, Any]:
    """Drain due inbox rows; if a backlog remains after the budget, queue another wake-up."""
    ctx = worker_context()
    # Clear the flag first: an event stored after this point will queue a fresh wake-up.
    ctx.redis.delete(wake_key(ctx.settings.redis_prefix))
    stats = ctx.pipeline.drain(time_budget=DRAIN_TIME_BUDGET_SECONDS)
    if stats.more:
        ctx.dispatcher.wake()
    return {
        "batches": stats.batches,
        "applied": stats.applied,
        "failed": stats.failed,
        "dead": stats.dead,
        "more": stats.more,
    }
