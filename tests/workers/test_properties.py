"""Property tests of the whole pipeline on real PostgreSQL and Redis (STYLE 14).

Any event stream, delivered in any order, with duplicates, split across requests, and with
applied rows replayed as a crashed job would, ends with the same ledger and totals; ledger sums
equal the players' totals; after ``reconcile`` Redis equals the ledger.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from questline.models import InboxEvent, Player, PlayerIdentity, XpLedger
from questline.reconcile import reconcile
from tests.conftest import event, new_tenant

# Points per type, written out independently of engine.rules.DEFAULT_RULES.
POINTS = {
    "session.started": (1, False),
    "lesson.completed": (10, False),
    "quiz.submitted": (20, True),
    "course.completed": (100, False),
}

events_strategy = st.lists(
    st.tuples(
        st.sampled_from(sorted(POINTS)),
        st.sampled_from(["ann", "bob", "cy"]),
        st.sampled_from([None, 0.0, 0.25, 0.5, 0.75, 1.0]),
        st.integers(min_value=0, max_value=20),  # day offset
    ),
    min_size=1,
    max_size=25,
)


def expected_totals(stream) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for kind, actor, score, _day in stream:
        points, per_score = POINTS[kind]
        amount = round(points * (score or 0.0)) if per_score else points
        out[actor] += amount
    return {actor: xp for actor, xp in out.items() if xp}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=events_strategy,
    data=st.data(),
)
def test_any_delivery_order_with_duplicates_gives_the_same_ledger(client, ctx, db, stream, data):
    tenant = new_tenant(db)
    items = [
        event(f"e{i}", type=kind, actor=actor, score=score, at=f"2026-11-{1 + day:02d}T12:00:00Z")
        for i, (kind, actor, score, day) in enumerate(stream)
    ]
    # Deliver every event at least once, some several times, in a random order and chunking.
    deliveries = items + data.draw(st.lists(st.sampled_from(items), max_size=10), label="dups")
    deliveries = data.draw(st.permutations(deliveries), label="order")
    cut = data.draw(st.integers(min_value=1, max_value=len(deliveries)), label="chunk")
    for start in range(0, len(deliveries), cut):
        response = client.post(
            "/api/v1/events", json=deliveries[start : start + cut], headers=tenant.auth
        )
        assert response.status_code == 202
    # A crashed job's rows replayed: force some applied rows back to pending and drain again.
    replay = data.draw(st.lists(st.sampled_from([i["id"] for i in items]), max_size=5))
    with db.session() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.tenant_id == tenant.id, InboxEvent.event_key.in_(replay))
            .values(status="pending")
        )
    ctx.pipeline.drain()

    with db.sessions() as session:
        by_actor = {
            value: xp
            for value, xp in session.execute(
                select(PlayerIdentity.value, Player.xp)
                .join(Player, Player.id == PlayerIdentity.player_id)
                .where(Player.tenant_id == tenant.id)
            )
        }
        ledger_sums = {
            pid: int(total)
            for pid, total in session.execute(
                select(XpLedger.player_id, func.sum(XpLedger.amount))
                .where(XpLedger.tenant_id == tenant.id)
                .group_by(XpLedger.player_id)
            )
        }
        player_xp = {
            pid: xp
            for pid, xp in session.execute(
                select(Player.id, Player.xp).where(Player.tenant_id == tenant.id)
            )
        }
        ledger_keys = session.scalar(
            select(func.count()).select_from(XpLedger).where(XpLedger.tenant_id == tenant.id)
        )
    assert {a: xp for a, xp in by_actor.items() if xp} == expected_totals(stream)
    assert {pid: xp for pid, xp in player_xp.items() if xp} == ledger_sums
    assert ledger_keys == sum(
        1
        for kind, _a, score, _d in stream
        if not POINTS[kind][1] or round(POINTS[kind][0] * (score or 0.0))
    )
    live_board = {
        int(m): int(s)
        for m, s in ctx.redis.zrange(ctx.boards.key(tenant.id, "tenant"), 0, -1, withscores=True)
    }
    assert live_board == ledger_sums
    (drift,) = reconcile(db, ctx.boards, tenant.id)
    assert drift.fixed == 0 and drift.aggregate_mismatches == []
    board = {
        int(m): int(s)
        for m, s in ctx.redis.zrange(ctx.boards.key(tenant.id, "tenant"), 0, -1, withscores=True)
    }
    assert board == ledger_sums
