"""RQ entry points for LTI services. Thin: they take no ORM objects, build the context, and
run one delivery or sync; retries are declared where they are enqueued."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rq import Queue, Retry

from lti.keys import SigningKeyCache
from workers.context import Context, worker_context

DELIVER = "lti.jobs.deliver_scores"
ROSTER = "lti.jobs.sync_roster"


def _keys(ctx: Context) -> SigningKeyCache:
    return SigningKeyCache(ctx.settings.secret_key)


def deliver_scores() -> dict[str, Any]:
    """Post due AGS scores; if some must be retried later, schedule the next run for then."""
    from lti.grades import deliver_due

    ctx = worker_context()
    stats = deliver_due(ctx.db, ctx.settings, _keys(ctx), datetime.now(UTC))
    if stats.next_due is not None and not ctx.settings.embedded:
        queue(ctx).enqueue_at(stats.next_due, DELIVER, retry=Retry(max=3, interval=[10, 60, 300]))
    return {"sent": stats.sent, "retried": stats.retried, "dead": stats.dead}


def sync_roster(course_id: int) -> dict[str, Any]:
    from lti.roster import sync_course

    ctx = worker_context()
    result = sync_course(ctx.db, _keys(ctx), course_id, datetime.now(UTC))
    return {"members": result.members, "created": result.created}


def queue(ctx: Context) -> Queue:
    return Queue(ctx.settings.queue_name, connection=ctx.redis)


def wake_scores(ctx: Context) -> None:
    """Deliver now: inline in the embedded default, else as an RQ job that RQ retries if the
    job itself crashes (a platform's refusal is retried per row, with backoff, by the outbox)."""
    if ctx.settings.embedded:
        from lti.grades import deliver_due

        deliver_due(ctx.db, ctx.settings, _keys(ctx), datetime.now(UTC))
        return
    queue(ctx).enqueue(DELIVER, retry=Retry(max=3, interval=[10, 60, 300]), result_ttl=60)


def request_roster_sync(ctx: Context, course_id: int) -> None:
    if ctx.settings.embedded:
        from lti.roster import sync_course

        sync_course(ctx.db, _keys(ctx), course_id, datetime.now(UTC))
        return
    queue(ctx).enqueue(ROSTER, course_id, retry=Retry(max=3, interval=[10, 60, 300]), result_ttl=60)
