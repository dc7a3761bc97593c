"""The rules engine through the real pipeline (PostgreSQL + Redis): the counters caps and
cooldowns need are saved with the ledger, survive batches, and never count a replay twice."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from questline.models import InboxEvent, Player, XpLedger
from tests.conftest import event, new_tenant
from tests.rules.helpers import ledger, post, xp_by_actor
from workers.rulesets import store_version

CAPPED = {
    "version": 2,
    "xp": [
        {"id": "lesson", "on": "lesson.completed", "points": 10, "cap": {"per_day": 25}},
        {
            "id": "quiz",
            "on": "quiz.submitted",
            "points": "100 * score",
            "cap": {"per_object": 100},
        },
    ],
}


def use(db, tenant, document, course=None):
    with db.session() as session:
        store_version(session, tenant.id, document, course=course, actor="test")


def lesson(event_id, at, actor="ann"):
    return event(event_id, actor=actor, at=at)


def test_daily_cap_holds_across_requests_and_batches(client, db, tenant):
    use(db, tenant, CAPPED)
    post(client, tenant, lesson("1", "2026-11-20T08:00:00Z"), lesson("2", "2026-11-20T09:00:00Z"))
    post(client, tenant, lesson("3", "2026-11-20T10:00:00Z"))
    post(client, tenant, lesson("4", "2026-11-20T11:00:00Z"))
    post(client, tenant, lesson("5", "2026-11-21T08:00:00Z"))
    assert xp_by_actor(db, tenant) == {"ann": 35}
    assert [amount for _key, amount, _text in ledger(db, tenant)] == [10, 10, 5, 10]
    with db.sessions() as session:
        state = session.scalar(select(Player.rule_state).where(Player.tenant_id == tenant.id))
    assert state["day_xp"] == {"lesson|2026-11-20": 25, "lesson|2026-11-21": 10}


def test_the_local_day_of_the_player_decides_the_cap(client, db):
    tenant = new_tenant(db, timezone="Pacific/Kiritimati")  # UTC+14
    use(db, tenant, CAPPED)
    # 09:00Z and 11:00Z are the 20th and the 21st in Kiritimati: two days, no cap reached.
    post(
        client,
        tenant,
        lesson("1", "2026-11-20T09:00:00Z"),
        lesson("2", "2026-11-20T09:30:00Z"),
        lesson("3", "2026-11-20T11:00:00Z"),
        lesson("4", "2026-11-20T11:30:00Z"),
    )
    assert xp_by_actor(db, tenant) == {"ann": 40}


def test_a_replayed_row_never_feeds_the_counters_twice(client, db, ctx, tenant):
    use(db, tenant, CAPPED)
    post(
        client,
        tenant,
        event("q1", type="quiz.submitted", actor="ann", score=0.6, object={"id": "q"}),
    )
    # A crashed job's row goes back to pending and is drained again.
    with db.session() as session:
        session.execute(
            update(InboxEvent).where(InboxEvent.tenant_id == tenant.id).values(status="pending")
        )
    ctx.pipeline.drain()
    post(
        client,
        tenant,
        event(
            "q2",
            type="quiz.submitted",
            actor="ann",
            score=0.7,
            object={"id": "q"},
            at="2026-11-20T11:00:00Z",
        ),
    )
    # 60, then 40 left under the per-object cap of 100 (not 0, as a double count would leave).
    assert xp_by_actor(db, tenant) == {"ann": 100}


def test_course_rules_through_the_pipeline(client, db, tenant):
    use(db, tenant, CAPPED)
    use(
        db,
        tenant,
        {"xp": [{"id": "lesson", "on": "lesson.completed", "points": 1}]},
        course="math",
    )
    post(
        client,
        tenant,
        event("a", actor="ann", course="math"),
        event("b", actor="bob", course="art"),
    )
    assert xp_by_actor(db, tenant) == {"ann": 1, "bob": 10}


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=st.lists(
        st.tuples(
            st.sampled_from(["ann", "bob"]),
            st.integers(min_value=0, max_value=2),  # day
            st.integers(min_value=0, max_value=23),  # hour
        ),
        min_size=1,
        max_size=20,
    ),
    data=st.data(),
)
def test_caps_hold_and_ledger_sums_equal_totals_for_any_delivery(client, db, stream, data):
    """Any order, duplicates, chunking: never more than the cap a day, and no key twice."""
    tenant = new_tenant(db)
    use(db, tenant, CAPPED)
    items = [
        lesson(f"e{i}", f"2026-11-2{day}T{hour:02d}:00:00Z", actor=actor)
        for i, (actor, day, hour) in enumerate(stream)
    ]
    deliveries = items + data.draw(st.lists(st.sampled_from(items), max_size=8), label="dups")
    deliveries = data.draw(st.permutations(deliveries), label="order")
    cut = data.draw(st.integers(min_value=1, max_value=len(deliveries)), label="chunk")
    for start in range(0, len(deliveries), cut):
        post(client, tenant, *deliveries[start : start + cut])

    per_day: dict[tuple[str, int], int] = defaultdict(int)
    for actor, day, _hour in stream:
        per_day[(actor, day)] += 1
    expected: dict[str, int] = defaultdict(int)
    for (actor, _day), count in per_day.items():
        expected[actor] += min(25, 10 * count)
    assert xp_by_actor(db, tenant) == dict(expected)

    with db.sessions() as session:
        sums = {
            pid: total
            for pid, total in session.execute(
                select(XpLedger.player_id, func.sum(XpLedger.amount))
                .where(XpLedger.tenant_id == tenant.id)
                .group_by(XpLedger.player_id)
            )
        }
        totals = {
            pid: xp
            for pid, xp in session.execute(
                select(Player.id, Player.xp).where(Player.tenant_id == tenant.id)
            )
        }
    assert {pid: int(total) for pid, total in sums.items()} == totals
