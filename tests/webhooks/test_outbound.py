"""Outbound: outbox rows written in the caller's transaction, delivered signed per Standard
Webhooks to a real HTTP server on loopback, retried with backoff, every attempt logged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from engine.decisions import BadgeAwarded, LevelReached, StreakUpdated, XpAwarded
from questline.db import Database
from questline.settings import Settings
from tests.conftest import TenantHandle
from tests.webhooks.helpers import Receiver, serve_receiver, verify_standard
from webhooks.jobs import flag_key, wake_delivery
from webhooks.models import WebhookOutbox
from webhooks.outbound import (
    Outbound,
    SubscriptionError,
    backoff,
    deliver_due,
    delivery_log,
    outbound_for,
    record,
    record_many,
    subscribe,
)
from workers.context import Context, set_worker_context


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as running:
        yield running


def test_record_writes_in_the_callers_transaction_once_per_key(
    db: Database, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    with db.session() as session:
        subscribe(session, tenant.id, "https://a.example/h", ["badge.awarded"])
        subscribe(session, tenant.id, "https://b.example/h", ["badge.awarded", "level.reached"])
        subscribe(session, other_tenant.id, "https://c.example/h", ["badge.awarded"])
    with db.session() as session:
        assert record(session, tenant.id, "badge.awarded", {"badge": "b1"}, "award:1") == 2
        assert record(session, tenant.id, "level.reached", {"level": 2}, "level:1") == 1
        assert record(session, tenant.id, "badge.awarded", {"badge": "b1"}, "award:1") == 0
        assert record(session, tenant.id, "quest.completed", {}, "quest:1") == 0
    # A rolled-back award leaves no notification behind.
    with pytest.raises(RuntimeError), db.session() as session:
        record(session, tenant.id, "badge.awarded", {"badge": "b2"}, "award:2")
        raise RuntimeError("the award transaction failed")
    with db.sessions() as session:
        keys = session.scalars(
            select(WebhookOutbox.key).where(WebhookOutbox.tenant_id == tenant.id)
        )
        assert sorted(keys) == ["award:1", "award:1", "level:1"]
        assert (
            session.scalars(
                select(WebhookOutbox.id).where(WebhookOutbox.tenant_id == other_tenant.id)
            ).all()
            == []
        )
    with db.sessions() as session, pytest.raises(ValueError):
        record(session, tenant.id, "xp.changed", {}, "k")
    with db.session() as session, pytest.raises(SubscriptionError):
        subscribe(session, tenant.id, "ftp://x", ["badge.awarded"])


def test_record_many_fans_a_batch_out_to_the_subscriptions_that_want_it(
    db: Database, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    batch = [
        Outbound("badge.awarded", {"player_id": 1, "badge": "first-steps"}, "badge:e1:r1"),
        Outbound("level.reached", {"player_id": 1, "level": 2}, "level:1:2"),
        Outbound("streak.extended", {"player_id": 2, "days": 3}, "streak:2:2026-11-23"),
    ]
    with db.session() as session:
        assert record_many(session, tenant.id, batch) == 0  # no subscriptions: nothing written
        subscribe(session, tenant.id, "https://a.example/h", ["badge.awarded", "level.reached"])
        subscribe(session, tenant.id, "https://b.example/h", ["streak.extended"])
        subscribe(session, other_tenant.id, "https://c.example/h", ["badge.awarded"])
    with db.session() as session:
        assert record_many(session, tenant.id, batch) == 3
        assert record_many(session, tenant.id, batch) == 0  # the batch re-run after a retry
    with db.sessions() as session:
        rows = session.execute(
            select(WebhookOutbox.event_type, WebhookOutbox.payload).where(
                WebhookOutbox.tenant_id.in_([tenant.id, other_tenant.id])
            )
        ).all()
    assert sorted(t for t, _ in rows) == ["badge.awarded", "level.reached", "streak.extended"]
    assert {"player_id": 2, "days": 3} in [p for _, p in rows]
    with db.sessions() as session, pytest.raises(ValueError, match=r"xp\.changed"):
        record_many(session, tenant.id, [Outbound("xp.changed", {}, "k")])


def test_signed_delivery_retries_with_backoff_and_logs_every_attempt(
    db: Database, tenant: TenantHandle, receiver: Receiver
) -> None:
    with db.session() as session:
        _, secret = subscribe(
            session, tenant.id, receiver.url, ["level.reached"], allow_private=True
        )
        record(session, tenant.id, "level.reached", {"player_id": 7, "level": 3}, "lvl:7:3")
    receiver.plan = [500, 503]
    now = datetime.now(UTC) + timedelta(seconds=1)
    first = deliver_due(db, now, allow_private=True)
    assert (first.delivered, first.retrying) == (0, 1)
    assert deliver_due(db, now, allow_private=True).retrying == 0  # not due before the backoff
    second = deliver_due(db, now + backoff(1), allow_private=True)
    assert second.retrying == 1
    third = deliver_due(db, now + backoff(1) + backoff(2), allow_private=True)
    assert third.delivered == 1
    assert len(receiver.requests) == 3
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert len(ids) == 1  # the same message id on every retry: the receiver can dedupe
    for headers, body in receiver.requests:
        assert verify_standard(secret, headers, body)
        assert json.loads(body)["data"] == {"player_id": 7, "level": 3}
        assert json.loads(body)["type"] == "level.reached"
    with db.sessions() as session:
        (entry,) = delivery_log(session, tenant.id)
    assert entry["status"] == "delivered" and entry["attempts"] == 3
    assert [a["status"] for a in entry["log"]] == [500, 503, 204]
    assert backoff(1) == timedelta(seconds=30) and backoff(3) == timedelta(seconds=120)


def test_unreachable_endpoint_fails_after_max_attempts(db: Database, tenant: TenantHandle) -> None:
    with db.session() as session:
        subscribe(
            session, tenant.id, "http://127.0.0.1:1/nothing", ["badge.awarded"], allow_private=True
        )
        record(session, tenant.id, "badge.awarded", {"badge": "x"}, "award:x")
    at = datetime.now(UTC) + timedelta(seconds=1)
    for _ in range(3):
        deliver_due(db, at, max_attempts=3, allow_private=True)
        at += timedelta(hours=7)
    with db.sessions() as session:
        (entry,) = delivery_log(session, tenant.id)
    assert entry["status"] == "failed" and entry["attempts"] == 3
    assert all(a["status"] is None and "ConnectionError" in a["error"] for a in entry["log"])


def test_scheduler_wake_queues_one_rq_run_that_delivers(
    settings: Settings, ctx: Context, db: Database, tenant: TenantHandle, receiver: Receiver
) -> None:
    ctx.settings = replace(settings, outbound_allow_private=True)  # the receiver is on loopback
    set_worker_context(ctx)
    queue = Queue(settings.queue_name, connection=ctx.redis)
    assert wake_delivery(ctx) is False and len(queue) == 0  # nothing due: no job
    with db.session() as session:
        subscribe(session, tenant.id, receiver.url, ["quest.completed"], allow_private=True)
        record(session, tenant.id, "quest.completed", {"quest": "q1"}, "quest:q1:7")
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert wake_delivery(ctx, later) is True
    assert wake_delivery(ctx, later) is True
    assert len(queue) == 1  # two ticks, one waiting run
    SimpleWorker([queue], connection=ctx.redis).work(burst=True)
    assert [json.loads(body)["type"] for _, body in receiver.requests] == ["quest.completed"]
    assert wake_delivery(ctx) is False  # delivered: nothing due any more
    assert ctx.redis.get(flag_key(settings.redis_prefix)) is None  # the run cleared its flag


def test_engine_decisions_become_messages_keyed_by_the_award() -> None:
    at = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    badge = BadgeAwarded(
        idempotency_key="e1/first-steps/0", badge_id="first-steps", name="First steps",
        tier=0, tier_name="", course=None, awarded_at=at, expires_at=None, explanation="",
    )  # fmt: skip
    note = outbound_for(7, "e1", badge)
    assert note is not None and note.event_type == "badge.awarded"
    assert note.key == "badge:e1/first-steps/0" and note.payload["badge_id"] == "first-steps"
    assert note.payload["awarded_at"] == at.isoformat() and note.payload["player_id"] == 7
    level = outbound_for(7, "e1", LevelReached(level=3, previous=2))
    assert level == Outbound(
        "level.reached", {"player_id": 7, "level": 3, "previous": 2, "event_id": "e1"}, "level:7:3"
    )
    day = at.date()
    extended = outbound_for(7, "e2", StreakUpdated(current=4, longest=9, last_day=day))
    assert extended is not None and extended.event_type == "streak.extended"
    assert extended.key == f"streak:7:{day.isoformat()}" and extended.payload["days"] == 4
    assert outbound_for(7, "e3", StreakUpdated(current=1, longest=9, last_day=day)) is None
    xp = XpAwarded(idempotency_key="k", rule_id="r", amount=5, course=None, explanation="")
    assert outbound_for(7, "e1", xp) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/h",
        "http://localhost/h",
        "http://api.localhost/h",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/h",
        "http://192.168.1.1/h",
        "http://[::1]/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://0.0.0.0/h",
    ],
)
def test_internal_addresses_cannot_be_subscribed(
    db: Database, tenant: TenantHandle, url: str
) -> None:
    """SSRF guard: a tenant admin's URL may not aim Questline at its own network."""
    with db.session() as session, pytest.raises(SubscriptionError, match="public addresses"):
        subscribe(session, tenant.id, url, ["badge.awarded"])


def test_a_name_resolving_to_loopback_is_refused_at_delivery_and_never_called(
    db: Database, tenant: TenantHandle, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name passes at subscribe time (no DNS then); every delivery checks where it leads.
    The name's DNS answer is supplied here (the test machine has no public DNS)."""
    import socket

    import webhooks.egress

    port = int(receiver.url.split(":")[2].split("/")[0])

    def resolve(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "hooks.rebind.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(webhooks.egress.socket, "getaddrinfo", resolve)
    with db.session() as session:
        subscribe(session, tenant.id, f"http://hooks.rebind.example:{port}/h", ["level.reached"])
        record(session, tenant.id, "level.reached", {"player_id": 1, "level": 2}, "lvl:1:2")
    stats = deliver_due(db, datetime.now(UTC) + timedelta(seconds=1))
    assert (stats.delivered, stats.retrying) == (0, 1)
    assert receiver.requests == []
    with db.sessions() as session:
        (entry,) = delivery_log(session, tenant.id)
    error = entry["log"][0]["error"]
    assert error.startswith("refused: hooks.rebind.example resolves to 127.0.0.1, a loopback")


def test_egress_rules_on_addresses() -> None:
    from webhooks.egress import EgressRefused, check_destination, check_url

    check_url("https://hooks.example.org/x", allow_private=False)  # a name: checked at delivery
    check_url("https://93.184.215.14/x", allow_private=False)  # a public literal
    check_url("http://127.0.0.1/x", allow_private=True)  # the operator allows private
    for bad in ("ftp://x/y", "http:///nohost", "http://example.org:99999/"):
        with pytest.raises(EgressRefused):
            check_url(bad, allow_private=False)
    with pytest.raises(EgressRefused, match="cannot resolve"):
        check_destination("https://no-such-host.invalid/x", allow_private=False)
