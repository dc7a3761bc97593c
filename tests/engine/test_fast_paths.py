"""The engine's shortcuts agree with the plain versions they replace: ``Conditions.matches`` with
``reasons``, and ``RuleCounters.after_awards`` (one copy per event) with ``after_award`` applied
award by award."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from engine.counters import RuleCounters
from engine.events import parse_event
from engine.xp_rules import Conditions

conditions = st.builds(
    Conditions,
    object_types=st.none() | st.frozensets(st.sampled_from(["quiz", "lesson"]), min_size=1),
    courses=st.none() | st.frozensets(st.sampled_from(["c1", "c2"]), min_size=1),
    score_at_least=st.none() | st.floats(0, 1),
    passed=st.none() | st.booleans(),
)
events = st.builds(
    lambda kind, course, score, passed: parse_event(
        {
            "id": "e",
            "type": "quiz.submitted",
            "actor": {"id": "a"},
            "object": {"id": "o", "type": kind},
            "context": {"course": course},
            "result": {k: v for k, v in (("score", score), ("passed", passed)) if v is not None},
            "occurred_at": "2026-11-23T10:00:00Z",
        }
    ),
    st.sampled_from(["quiz", "lesson", "video"]),
    st.sampled_from(["c1", "c2", "c3"]),
    st.none() | st.floats(0, 1),
    st.none() | st.booleans(),
)


@given(conditions, events)
def test_matches_agrees_with_reasons(when, event):
    assert when.matches(event) == (when.reasons(event) is not None)


awards = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3"]),
        st.none() | st.dates(date(2026, 11, 1), date(2026, 11, 30)),
        st.none() | st.sampled_from(["o1", "o2"]),
        st.none() | st.integers(1_700_000_000, 1_700_100_000),
        st.integers(0, 50),
        st.none() | st.integers(1, 50_000),
        st.sampled_from(["o1", "o2", "-"]),
    ),
    max_size=6,
    unique_by=lambda a: a[0],  # one award per rule per event, as the engine makes them
)


@given(st.lists(awards, max_size=6))
def test_after_awards_equals_award_by_award(events_awards):
    batched = sequential = RuleCounters()
    for event_awards in events_awards:
        day = next((a[1] for a in event_awards if a[1] is not None), None)
        at = next((a[3] for a in event_awards if a[3] is not None), None)
        # Within one event every award has the event's day and time.
        same = [
            (r, day if d else None, o, at if t else None, n, c, co)
            for r, d, o, t, n, c, co in event_awards
        ]
        batched = batched.after_awards(same)
        for rule, d, obj, t, amount, cooldown, cobj in same:
            sequential = sequential.after_award(
                rule, day=d, obj=obj, at=t, amount=amount, cooldown=cooldown, cooldown_object=cobj
            )
    assert batched == sequential
