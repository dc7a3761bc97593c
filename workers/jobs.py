"""RQ job entry points. Thin: they take no ORM objects, only build the context and drain.

A drain job is long-lived on purpose. An RQ job has a fixed cost (about 6 ms in a SimpleWorker
here) and so has a batch (a few dozen statements), so under a stream of single-event requests
the job keeps going: it waits ``drain_window_seconds`` between short batches so rows pile up, and
lingers ``drain_linger_seconds`` after the inbox runs dry before it ends. While it runs it holds
its slot's wake flag, so ingest queues no further jobs.

Ending without losing a wake-up: the job releases its flag and then drains once more. An event
stored before the release, whose wake-up found the flag held, is caught by that last drain; an
event stored after it queues a new job.
"""

from __future__ import annotations

import time
from typing import Any

from workers.context import Context, worker_context
from workers.pipeline import DrainStats
from workers.queue import RqDispatcher

DRAIN_TIME_BUDGET_SECONDS = 10.0


def drain_inbox(slot: int = 0) -> dict[str, Any]:
    """Drain due inbox rows for up to the time budget, holding ``slot``'s wake flag."""
    ctx = worker_context()
    dispatcher = ctx.dispatcher
    if not isinstance(dispatcher, RqDispatcher):  # embedded: the inline dispatcher drains
        ctx.pipeline.drain()
        return {"slot": slot, "batches": 0, "applied": 0, "failed": 0, "dead": 0, "more": False}
    stats = _drain_holding(ctx, dispatcher, slot, DRAIN_TIME_BUDGET_SECONDS)
    return {
        "slot": slot,
        "batches": stats.batches,
        "applied": stats.applied,
        "failed": stats.failed,
        "dead": stats.dead,
        "more": stats.more,
    }


def _drain_holding(ctx: Context, dispatcher: RqDispatcher, slot: int, budget: float) -> DrainStats:
    settings = ctx.settings
    # Helper slots exist for backlogs only: they stop as soon as a batch comes back short.
    linger = settings.drain_linger_seconds if slot == 0 else 0.0
    stats = DrainStats()
    started = time.monotonic()
    idle_since: float | None = None
    while True:
        claimed = _batch(ctx, stats)
        now = time.monotonic()
        if claimed >= settings.job_batch_size:
            dispatcher.wake(slot + 1)  # a backlog: let another worker share it
            idle_since = None
        elif claimed:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        if now - started >= budget:
            dispatcher.hand_over(slot)  # free this worker for other queues; a successor goes on
            stats.more = True
            return stats
        if idle_since is not None and now - idle_since >= linger:
            dispatcher.release(slot)
            if not _batch(ctx, stats) or not dispatcher.retake(slot):
                return stats
            idle_since = None
            continue
        dispatcher.keep(slot)
        if claimed < settings.job_batch_size:
            time.sleep(settings.drain_window_seconds)


def _batch(ctx: Context, stats: DrainStats) -> int:
    claimed, applied, failed, dead = ctx.pipeline.run_batch()
    if claimed:
        stats.batches += 1
        stats.applied += applied
        stats.failed += failed
        stats.dead += dead
    return claimed
