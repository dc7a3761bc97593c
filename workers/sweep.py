"""The scheduler's sweep: find inbox rows that are due but nobody is working on, wake workers.

A job can be lost (a worker killed, Redis flushed); the inbox row is still pending, so the sweep
finds it and the event is processed late rather than never.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, func, or_, select

from questline.models import InboxEvent
from workers.context import Context
from workers.process import utcnow


def due_count(ctx: Context) -> int:
    """Pending rows received over ``stale_after_seconds`` ago, or whose retry time has come."""
    now = utcnow()
    stale = now - timedelta(seconds=ctx.settings.stale_after_seconds)
    with ctx.db.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(InboxEvent)
                .where(
                    InboxEvent.status == "pending",
                    or_(
                        and_(InboxEvent.next_attempt_at.is_(None), InboxEvent.received_at <= stale),
                        InboxEvent.next_attempt_at <= now,
                    ),
                )
            )
            or 0
        )


def sweep(ctx: Context) -> int:
    due = due_count(ctx)
    if due:
        ctx.dispatcher.wake()
    return due
