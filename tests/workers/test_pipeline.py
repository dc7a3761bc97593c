"""The pipeline on real PostgreSQL and Redis: exactly-once effects, retries, dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from engine.events import parse_event
from questline.ingest import IngestReport, store_events
from questline.models import InboxEvent, Player, RuleSet, XpLedger
from questline.reconcile import reconcile
from tests.conftest import TenantHandle, dead_redis, event
from workers.process import process_batch


def ingest(db, tenant: TenantHandle, *items, received_at=None) -> IngestReport:
    """Store events in the inbox without processing them (what the API does before waking)."""
    report = IngestReport()
    with db.session() as session:
        store_events(
            session,
            tenant.id,
            [(parse_event(item), item) for item in items],
            received_at or datetime.now(UTC),
            report,
        )
    return report


def statuses(db, tenant: TenantHandle) -> dict[str, int]:
    with db.sessions() as session:
        rows = session.execute(
            select(InboxEvent.status, func.count())
            .where(InboxEvent.tenant_id == tenant.id)
            .group_by(InboxEvent.status)
        )
        return {status: n for status, n in rows}


def board(ctx, tenant: TenantHandle, name: str = "tenant") -> dict[int, int]:
    return {
        int(member): int(score)
        for member, score in ctx.redis.zrange(
            ctx.boards.key(tenant.id, name), 0, -1, withscores=True
        )
    }


def totals(db, tenant: TenantHandle) -> dict[int, int]:
    with db.sessions() as session:
        rows = session.execute(select(Player.id, Player.xp).where(Player.tenant_id == tenant.id))
        return {pid: xp for pid, xp in rows}


def test_drain_applies_everything_once_and_boards_match(ctx, db, tenant):
    ingest(db, tenant, *[event(f"e{i}", actor=f"a{i % 3}") for i in range(250)])
    stats = ctx.pipeline.drain()
    assert stats.applied == 250
    assert stats.batches == 3  # job_batch_size is 100 in the test settings
    assert statuses(db, tenant) == {"applied": 250}
    assert sorted(totals(db, tenant).values()) == [830, 830, 840]
    assert board(ctx, tenant) == totals(db, tenant)
    # Draining again finds nothing and changes nothing.
    assert ctx.pipeline.drain().applied == 0
    assert sorted(totals(db, tenant).values()) == [830, 830, 840]


def test_replaying_an_applied_event_never_counts_twice(ctx, db, tenant):
    ingest(db, tenant, event("e1", type="course.completed"))
    ctx.pipeline.drain()
    # Force the row back to pending, as a crashed-and-retried job might find it.
    with db.session() as session:
        session.execute(update(InboxEvent).values(status="pending"))
    ctx.pipeline.drain()
    with db.sessions() as session:
        ledger = session.scalar(select(func.count()).select_from(XpLedger))
        (player,) = session.scalars(select(Player).where(Player.tenant_id == tenant.id))
    assert ledger == 1
    assert player.xp == 100
    assert player.events_applied == 2  # processed twice, applied once


def test_levels_follow_the_curve(ctx, db, tenant):
    ingest(db, tenant, *[event(f"c{i}", type="course.completed") for i in range(3)])
    ctx.pipeline.drain()
    (xp_level,) = [
        (p.xp, p.level)
        for p in db.sessions().scalars(select(Player).where(Player.tenant_id == tenant.id))
    ]
    assert xp_level == (300, 3)


def test_tenant_rule_set_is_used(ctx, db, tenant):
    with db.session() as session:
        session.add(
            RuleSet(
                tenant_id=tenant.id,
                version=1,
                active=True,
                document={
                    "xp": [{"id": "quiz", "on": "quiz.submitted", "points": 50, "per_score": True}],
                    "levels": {"table": [0, 20, 40]},
                },
            )
        )
    ingest(
        db, tenant, event("q1", type="quiz.submitted", score=0.5), event("l1")
    )  # lessons earn nothing under these rules
    ctx.pipeline.drain()
    ((xp, level),) = db.sessions().execute(
        select(Player.xp, Player.level).where(Player.tenant_id == tenant.id)
    )
    assert (xp, level) == (25, 2)


def test_failures_back_off_then_land_in_the_dead_letter_list(ctx, db, tenant):
    with db.session() as session:
        session.add(RuleSet(tenant_id=tenant.id, version=1, active=True, document={"xp": "broken"}))
    ingest(db, tenant, event("e1"), event("e2"))
    now = datetime.now(UTC)
    result = process_batch(db, limit=100, max_attempts=3, retry_base_seconds=10, now=now)
    assert (result.claimed, result.applied, result.failed, result.dead) == (2, 0, 2, 0)
    with db.sessions() as session:
        rows = session.scalars(select(InboxEvent).where(InboxEvent.tenant_id == tenant.id)).all()
    assert {r.status for r in rows} == {"pending"}
    assert {r.attempts for r in rows} == {1}
    assert all("InvalidRules" in r.last_error for r in rows)
    # Not due yet: nothing is claimed until the backoff has passed.
    assert process_batch(db, limit=100, max_attempts=3, retry_base_seconds=10, now=now).claimed == 0
    later = now + timedelta(seconds=11)
    assert (
        process_batch(db, limit=100, max_attempts=3, retry_base_seconds=10, now=later).failed == 2
    )
    even_later = later + timedelta(seconds=21)  # second retry waits 2 x 10 s
    result = process_batch(db, limit=100, max_attempts=3, retry_base_seconds=10, now=even_later)
    assert result.dead == 2
    assert statuses(db, tenant) == {"failed": 2}


def test_one_poison_event_does_not_block_the_batch(ctx, db, tenant):
    ingest(db, tenant, event("good-1"), event("poison"), event("no-actor"), event("good-2"))
    with db.session() as session:
        # A row whose stored canonical form no longer parses can never succeed.
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.event_key == "poison")
            .values(canonical={"id": "poison", "type": "???"})
        )
        # Well formed but nobody to credit: the fast read-back falls through to validation.
        headless = {**event("no-actor"), "occurred_at": "2026-11-20T10:00:00+00:00"}
        del headless["actor"]
        session.execute(
            update(InboxEvent).where(InboxEvent.event_key == "no-actor").values(canonical=headless)
        )
    stats = ctx.pipeline.drain()
    assert stats.applied == 2 and stats.dead == 2
    assert statuses(db, tenant) == {"applied": 2, "failed": 2}


def test_reconcile_rebuilds_lost_and_drifted_boards(ctx, db, tenant):
    ingest(db, tenant, *[event(f"e{i}", actor=f"a{i % 4}", course="c1") for i in range(20)])
    ctx.pipeline.drain()
    truth = totals(db, tenant)
    ctx.redis.delete(*ctx.redis.keys(f"{ctx.settings.redis_prefix}*"))  # Redis lost
    ctx.redis.zadd(ctx.boards.key(tenant.id, "course:ghost"), {"123": 5})  # and junk
    (drift,) = reconcile(db, ctx.boards, tenant.id)
    assert drift.fixed == 4 + 4 + 1
    assert drift.aggregate_mismatches == []
    assert board(ctx, tenant) == truth
    assert board(ctx, tenant, "course:c1") == truth
    assert board(ctx, tenant, "course:ghost") == {}
    (again,) = reconcile(db, ctx.boards, tenant.id)
    assert again.fixed == 0


def test_redis_write_failure_loses_no_award(ctx, db, tenant):

    from questline.leaderboards import Leaderboards

    healthy = ctx.pipeline.boards
    ctx.pipeline.boards = Leaderboards(dead_redis(), healthy.prefix)
    try:
        ingest(db, tenant, event("e1"))
        assert ctx.pipeline.drain().applied == 1
    finally:
        ctx.pipeline.boards = healthy
    assert list(totals(db, tenant).values()) == [10]
    assert board(ctx, tenant) == {}
    reconcile(db, ctx.boards, tenant.id)
    assert board(ctx, tenant) == totals(db, tenant)


def test_streaks_use_the_players_time_zone(ctx, db, tenant):
    # 23:30 and 00:30 UTC are the same local day in Honolulu but different days in UTC.
    a = event("1", actor="kai", at="2026-11-20T23:30:00Z")
    a["actor"]["timezone"] = "Pacific/Honolulu"
    b = event("2", actor="kai", at="2026-11-21T00:30:00Z")
    ingest(db, tenant, a, b)
    ctx.pipeline.drain()
    ((streak, zone),) = db.sessions().execute(
        select(Player.streak_current, Player.timezone).where(Player.tenant_id == tenant.id)
    )
    assert (streak, zone) == (1, "Pacific/Honolulu")


def test_store_events_refuses_a_nul_an_adapter_let_through_and_keeps_the_rest(db, tenant):
    """Webhook and LTI adapters call store_events directly; a NUL must cost only its own row."""
    good, bad = event("ok"), event("nul")
    bad["object"] = {"id": "quiz\u00001"}
    report = IngestReport()
    pairs = [(parse_event(bad), json.dumps(bad)), (parse_event(good), good)]
    with db.session() as session:
        store_events(session, tenant.id, pairs, datetime.now(UTC), report)
    assert report.accepted == ["ok"]
    assert [(r.index, r.id, r.errors[0]["field"]) for r in report.rejected] == [
        (0, "nul", "object.id")
    ]


def test_awards_write_outbound_messages_in_their_transaction_once(db, tenant):
    """Level and streak facts reach the outbox with the award; a re-run announces nothing new."""
    from webhooks.models import WebhookOutbox
    from webhooks.outbound import subscribe

    with db.session() as session:
        subscribe(
            session, tenant.id, "https://hooks.example/q", ["level.reached", "streak.extended"]
        )
    day1 = [event(f"d1-{i}", at="2026-11-19T10:00:00Z") for i in range(15)]
    ingest(db, tenant, *day1, event("d2", at="2026-11-20T10:00:00Z"))
    process_batch(db, limit=100, max_attempts=3, retry_base_seconds=1)

    def outbox() -> list[tuple[str, str]]:
        with db.sessions() as session:
            rows = session.execute(select(WebhookOutbox.event_type, WebhookOutbox.key))
            return sorted((kind, key) for kind, key in rows)

    first = outbox()
    kinds = {kind for kind, _ in first}
    assert kinds == {"level.reached", "streak.extended"}
    assert [key for kind, key in first if kind == "streak.extended"] == [
        key for key in (k for _, k in first) if key.endswith(":2026-11-20")
    ]
    with db.session() as session:  # at-least-once: the same rows come round again
        session.execute(update(InboxEvent).values(status="pending"))
    process_batch(db, limit=100, max_attempts=3, retry_base_seconds=1)
    assert outbox() == first


def test_a_row_resolved_to_a_player_merged_meanwhile_is_retried_onto_the_survivor(
    db, tenant, monkeypatch
):
    """Issue 8's merge race: a worker resolves actor a -> player A, an admin merges A into B
    and commits, then the worker gets A's row lock. It must write nothing to A."""
    import workers.process as process
    from identity.merge import merge_players

    ingest(db, tenant, event("a-1", actor="a"), event("b-1", actor="b"))
    process_batch(db, limit=100, max_attempts=3, retry_base_seconds=1)
    with db.sessions() as session:
        from questline.models import PlayerIdentity

        found = session.execute(select(PlayerIdentity.value, PlayerIdentity.player_id))
        ids = {value: pid for value, pid in found}
    a, b = ids["a"], ids["b"]
    ingest(db, tenant, event("a-2", actor="a"))
    real_resolve = process._resolve

    def resolve_then_merge(database, session, by_tenant):
        stale = real_resolve(database, session, by_tenant)  # a -> A, as before the merge
        with db.session() as admin:
            merge_players(admin, tenant.id, a, b, "admin:test")
        return stale

    monkeypatch.setattr(process, "_resolve", resolve_then_merge)
    now = datetime.now(UTC)
    first = process_batch(db, limit=100, max_attempts=3, retry_base_seconds=1, now=now)
    assert (first.applied, first.failed) == (0, 1)
    monkeypatch.setattr(process, "_resolve", real_resolve)
    later = now + timedelta(minutes=5)
    assert (
        process_batch(db, limit=100, max_attempts=3, retry_base_seconds=1, now=later).applied == 1
    )
    with db.sessions() as session:
        owners = {
            key: pid
            for key, pid in session.execute(
                select(InboxEvent.event_key, InboxEvent.player_id).where(
                    InboxEvent.tenant_id == tenant.id
                )
            )
        }
        xp = {pid: value for pid, value in session.execute(select(Player.id, Player.xp))}
    assert owners["a-2"] == b
    assert xp[b] == 30  # b-1, and a-1 moved by the merge, and a-2 applied to the survivor
