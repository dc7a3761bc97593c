"""The long-lived drain job: one job serves a stream, ends without losing a wake-up, calls a
helper for a backlog and hands over when its time budget is spent. Real RQ, Redis, PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from rq import Queue, SimpleWorker
from rq.registry import FinishedJobRegistry
from sqlalchemy import func, select

from questline import create_app
from questline.db import Database
from questline.models import InboxEvent
from tests.conftest import TenantHandle, event, make_context, new_tenant
from tests.workers.test_rq import _drop_tenant
from workers import jobs
from workers.context import set_worker_context
from workers.queue import RqDispatcher, wake_key


def _context(settings, database, redis_client, **overrides):
    settings = dataclasses.replace(settings, **overrides)
    ctx = make_context(settings, database, redis_client)
    ctx.dispatcher = RqDispatcher(
        redis_client, settings.queue_name, settings.redis_prefix, settings.drain_slots
    )
    set_worker_context(ctx)
    return ctx


def _pending(database: Database, tenant: TenantHandle) -> int:
    with database.sessions() as session:
        return session.scalar(
            select(func.count())
            .select_from(InboxEvent)
            .where(InboxEvent.tenant_id == tenant.id, InboxEvent.status == "pending")
        )


def test_one_job_serves_a_stream_of_single_events(settings, committed_db, redis_client):
    ctx = _context(settings, committed_db, redis_client, drain_linger_seconds=1.5)
    tenant = new_tenant(committed_db)
    try:
        client = create_app(ctx.settings, context=ctx).test_client()
        queue = Queue(settings.queue_name, connection=redis_client)
        client.post("/api/v1/events", json=event("s0"), headers=tenant.auth)
        assert len(queue) == 1
        queue_lengths: list[int] = []

        def stream() -> None:  # RQ's worker needs the main thread (signals): post from here
            for i in range(1, 40):
                response = client.post("/api/v1/events", json=event(f"s{i}"), headers=tenant.auth)
                assert response.status_code == 202
                queue_lengths.append(len(queue))
                time.sleep(0.01)

        poster = threading.Thread(target=stream)
        poster.start()
        SimpleWorker([queue], connection=redis_client).work(burst=True)
        poster.join(60)
        assert len(queue_lengths) == 39
        assert max(queue_lengths) <= 1  # the flag is held: never a second job
        assert _pending(committed_db, tenant) == 0
        assert FinishedJobRegistry(queue=queue).count == 1
        assert redis_client.get(wake_key(settings.redis_prefix)) is None
    finally:
        _drop_tenant(committed_db, tenant)


def test_an_event_whose_wakeup_was_swallowed_is_drained_before_the_job_ends(
    settings, db, redis_client
):
    ctx = _context(settings, db, redis_client, drain_linger_seconds=0)
    tenant = new_tenant(db)
    redis_client.set(wake_key(settings.redis_prefix), b"1")  # a job is (about to be) running
    client = create_app(ctx.settings, context=ctx).test_client()
    client.post("/api/v1/events", json=event("late"), headers=tenant.auth)
    queue = Queue(settings.queue_name, connection=redis_client)
    assert len(queue) == 0  # the wake-up found the flag held
    result = jobs.drain_inbox(0)
    assert result["applied"] == 1
    assert _pending(db, tenant) == 0
    assert redis_client.get(wake_key(settings.redis_prefix)) is None


def test_a_backlog_wakes_one_helper_slot(settings, db, redis_client):
    ctx = _context(settings, db, redis_client, job_batch_size=5, drain_linger_seconds=0)
    tenant = new_tenant(db)
    ctx.dispatcher.wake = lambda slot=0: False  # type: ignore[method-assign]  # store only
    client = create_app(ctx.settings, context=ctx).test_client()
    items = [event(f"b{i}") for i in range(12)]
    assert client.post("/api/v1/events", json=items, headers=tenant.auth).status_code == 202
    ctx.dispatcher = RqDispatcher(redis_client, settings.queue_name, settings.redis_prefix, 2)
    redis_client.set(wake_key(settings.redis_prefix), b"1")
    assert jobs.drain_inbox(0)["applied"] == 12
    queue = Queue(settings.queue_name, connection=redis_client)
    assert [job.args for job in queue.jobs] == [(1,)]  # exactly one helper, however full
    assert redis_client.get(wake_key(settings.redis_prefix, 1)) == b"1"
    SimpleWorker([queue], connection=redis_client).work(burst=True)
    assert redis_client.get(wake_key(settings.redis_prefix, 1)) is None


def test_a_spent_budget_hands_the_flag_to_a_successor(settings, db, redis_client, monkeypatch):
    ctx = _context(settings, db, redis_client, job_batch_size=5)
    tenant = new_tenant(db)
    ctx.dispatcher.wake = lambda slot=0: False  # type: ignore[method-assign]
    client = create_app(ctx.settings, context=ctx).test_client()
    items = [event(f"h{i}") for i in range(12)]
    client.post("/api/v1/events", json=items, headers=tenant.auth)
    ctx.dispatcher = RqDispatcher(redis_client, settings.queue_name, settings.redis_prefix, 1)
    redis_client.set(wake_key(settings.redis_prefix), b"1")
    monkeypatch.setattr(jobs, "DRAIN_TIME_BUDGET_SECONDS", 0.0)
    result = jobs.drain_inbox(0)
    assert result["more"] is True and result["applied"] == 5
    queue = Queue(settings.queue_name, connection=redis_client)
    assert [job.args for job in queue.jobs] == [(0,)]
    assert redis_client.ttl(wake_key(settings.redis_prefix)) > 0  # still held, for the successor
    assert _pending(db, tenant) == 7


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_drain_timings_must_be_non_negative(value):
    from questline.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="DRAIN_LINGER_SECONDS"):
        load_settings({"QUESTLINE_DRAIN_LINGER_SECONDS": value})
