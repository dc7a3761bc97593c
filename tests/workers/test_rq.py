"""The RQ path for real: ingest wakes a drain job on Redis, a SimpleWorker runs it."""

from __future__ import annotations

import threading

from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from questline import create_app
from questline.db import Database
from questline.models import InboxEvent, Player
from tests.conftest import TenantHandle, dead_redis, event, make_context, new_tenant
from workers.context import set_worker_context
from workers.queue import RqDispatcher, wake_key
from workers.sweep import sweep


def rq_context(settings, db, redis_client):
    ctx = make_context(settings, db, redis_client)
    ctx.dispatcher = RqDispatcher(redis_client, settings.queue_name, settings.redis_prefix)
    set_worker_context(ctx)
    return ctx


def test_ingest_enqueues_one_wakeup_and_the_worker_applies_all(settings, db, redis_client):
    ctx = rq_context(settings, db, redis_client)
    tenant = new_tenant(db)
    client = create_app(settings, context=ctx).test_client()
    for i in range(30):  # thirty single-event requests...
        response = client.post("/api/v1/events", json=event(f"e{i}"), headers=tenant.auth)
        assert response.status_code == 202
    queue = Queue(settings.queue_name, connection=redis_client)
    assert len(queue) == 1  # ...coalesce into one waiting drain job
    SimpleWorker([queue], connection=redis_client).work(burst=True)
    with db.sessions() as session:
        pending = session.scalar(
            select(func.count()).select_from(InboxEvent).where(InboxEvent.status == "pending")
        )
        xp = session.scalar(select(Player.xp).where(Player.tenant_id == tenant.id))
    assert pending == 0
    assert xp == 300
    assert redis_client.get(wake_key(settings.redis_prefix)) is None


def test_a_lost_job_is_found_by_the_sweep(settings, db, redis_client):
    ctx = rq_context(settings, db, redis_client)
    tenant = new_tenant(db)
    client = create_app(settings, context=ctx).test_client()
    client.post("/api/v1/events", json=event("e1"), headers=tenant.auth)
    queue = Queue(settings.queue_name, connection=redis_client)
    queue.empty()  # the job is lost...
    redis_client.delete(wake_key(settings.redis_prefix))
    assert sweep(ctx) == 0  # ...but the row is not yet stale
    ctx.settings = settings.__class__(**{**settings.__dict__, "stale_after_seconds": 0})
    ctx.dispatcher = RqDispatcher(redis_client, settings.queue_name, settings.redis_prefix)
    assert sweep(ctx) == 1
    SimpleWorker([queue], connection=redis_client).work(burst=True)
    with db.sessions() as session:
        assert session.scalar(select(Player.xp).where(Player.tenant_id == tenant.id)) == 10


def test_two_workers_racing_apply_each_event_exactly_once(
    settings, committed_db: Database, redis_client
):
    """Two drains on separate connections share the inbox via SKIP LOCKED and player locks."""
    ctx = make_context(settings, committed_db, redis_client)
    tenant = new_tenant(committed_db)
    try:
        client = create_app(settings, context=ctx).test_client()
        items = [event(f"e{i}", actor=f"a{i % 5}") for i in range(1000)]
        # Store without processing: a context whose dispatcher does nothing.
        ctx.dispatcher = type("Idle", (), {"wake": lambda self: None, "depth": lambda self: 0})()
        assert client.post("/api/v1/events", json=items, headers=tenant.auth).status_code == 202
        errors: list[BaseException] = []

        def drain() -> None:
            try:
                other = make_context(settings, Database(settings.database_url), redis_client)
                other.pipeline.drain()
                other.db.dispose()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=drain) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        with committed_db.sessions() as session:
            xp = {
                pid: v
                for pid, v in session.execute(
                    select(Player.id, Player.xp).where(Player.tenant_id == tenant.id)
                )
            }
            applied = session.scalar(
                select(func.count())
                .select_from(InboxEvent)
                .where(InboxEvent.tenant_id == tenant.id, InboxEvent.status == "applied")
            )
        assert applied == 1000
        assert sorted(xp.values()) == [2000] * 5
        board = {
            int(m): int(s)
            for m, s in redis_client.zrange(
                ctx.boards.key(tenant.id, "tenant"), 0, -1, withscores=True
            )
        }
        assert board == xp
    finally:
        _drop_tenant(committed_db, tenant)


def _drop_tenant(database: Database, tenant: TenantHandle) -> None:
    from sqlalchemy import delete

    from questline.models import Tenant

    with database.session() as session:
        session.execute(delete(Tenant).where(Tenant.id == tenant.id))


def test_ingest_still_acknowledges_stored_events_when_redis_is_down(settings, db, redis_client):
    """The wake-up is best effort; the stored row is the guarantee and the sweep finds it."""
    ctx = rq_context(settings, db, redis_client)
    tenant = new_tenant(db)
    ctx.dispatcher = RqDispatcher(dead_redis(), settings.queue_name, settings.redis_prefix)
    client = create_app(settings, context=ctx).test_client()
    response = client.post("/api/v1/events", json=event("e1"), headers=tenant.auth)
    assert response.status_code == 202
    assert response.get_json()["accepted"] == ["e1"]
    with db.sessions() as session:
        assert session.scalar(select(InboxEvent.status)) == "pending"
