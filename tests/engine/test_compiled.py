"""The compiled engine (engine/compiled.py: rules indexed by event type, closures, state updated
in place) gives exactly what the plain reading of the rules gives (tests/engine/reference_engine.py,
the engine before it was compiled): the same decisions, explanations included, in the same
order, and the same player state, over random streams that use every feature."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.decisions import BadgeAwarded, CurrencyAwarded, Decision, XpAwarded
from engine.evaluate import PlayerState, WorkingState, evaluate, evaluate_into
from engine.events import ActivityEvent, parse_event
from engine.rules import RuleBook, parse_rules
from engine.streaks import Streak
from tests.engine.reference_engine import reference_evaluate

TYPES = ["quiz.submitted", "lesson.completed", "video.watched"]

DOCUMENT: dict[str, Any] = {
    "version": 2,
    "xp": [
        {
            "id": "f",
            "on": "quiz.submitted",
            "points": "round(40 + 60 * score)",
            "when": {"score_at_least": 0.5},
        },
        {
            "id": "caps",
            "on": "quiz.submitted",
            "points": 15,
            "cap": {"per_day": 40, "per_object": 25},
        },
        {"id": "cool", "on": "lesson.completed", "points": 5, "cooldown": "1h", "currency": 2},
        {"id": "coins", "on": "lesson.completed", "points": 0, "currency": 1, "cooldown": 600},
        {
            "id": "first",
            "on": "lesson.completed",
            "points": 7,
            "when": {"first_time_per_object": True, "course": ["c1", "c2"]},
        },
        {
            "id": "typed",
            "on": "video.watched",
            "points": 3,
            "per_score": True,
            "when": {"object_type": ["quiz", "lesson"], "passed": True},
        },
        {
            "id": "dur",
            "on": "video.watched",
            "points": "min(50, duration / 60)",
            "cap": {"per_day": 60},
        },
    ],
    "multipliers": [
        {
            "id": "boost",
            "factor": 1.5,
            "from": "2026-11-03T00:00:00Z",
            "until": "2026-11-05T12:00:00Z",
            "rules": ["f", "cool"],
        },
        {"id": "all", "factor": 2, "from": "2026-11-04T00:00:00Z", "until": "2026-11-06T00:00:00Z"},
    ],
    "badges": [
        {"id": "busy", "name": "Busy", "criteria": {"count": 6}},
        {
            "id": "quizzer",
            "name": "Quizzer",
            "scope": "course",
            "tiers": [
                {
                    "name": "bronze",
                    "criteria": {"distinct_objects": 2, "of": {"on": "quiz.submitted"}},
                },
                {
                    "name": "silver",
                    "criteria": {
                        "all_of": [
                            {"distinct_objects": 3, "of": {"on": "quiz.submitted"}},
                            {
                                "best_score": 0.9,
                                "of": {"on": "quiz.submitted", "when": {"passed": True}},
                            },
                        ]
                    },
                },
            ],
        },
        {
            "id": "sprint",
            "name": "Sprinter",
            "expires_after": "2d",
            "criteria": {"count": 3, "within": "1d"},
        },
        {
            "id": "mixed",
            "name": "Mixed",
            "criteria": {
                "any_of": [
                    {"level": 3},
                    {"sum_of": "duration", "at_least": 3000, "of": {"on": "video.watched"}},
                ]
            },
        },
        {"id": "steady", "name": "Steady", "criteria": {"streak": 3}},
    ],
    "quests": [
        {
            "id": "daily",
            "name": "Daily",
            "period": "daily",
            "objectives": [{"count": 2}, {"xp": 30}],
            "reward": {"xp": 5},
        },
        {
            "id": "weekly",
            "name": "Weekly",
            "period": "weekly",
            "objectives": [{"count": 2, "of": {"on": "video.watched"}}],
            "reward": {"currency": 3},
        },
        {
            "id": "dated",
            "name": "Dated",
            "period": "dated",
            "from": "2026-11-02T00:00:00Z",
            "until": "2026-11-09T00:00:00Z",
            "objectives": [{"sum_of": "score", "at_least": 1.5, "of": {"on": "quiz.submitted"}}],
            "reward": {"xp": 1},
        },
    ],
    "streaks": {"milestones": [2, {"days": 4, "freezes": 1}], "max_freezes": 2},
    "levels": {"table": [0, 40, 120, 300, 600]},
}
COURSE_DOCUMENT: dict[str, Any] = {
    "xp": [{"id": "caps", "on": "quiz.submitted", "points": 30, "cap": {"per_object": 45}}],
    "badges": [{"id": "c-count", "name": "Course count", "criteria": {"count": 2}}],
}
RULES = parse_rules(DOCUMENT)
BOOK = RuleBook(RULES, {"c2": parse_rules(COURSE_DOCUMENT, scope="course")})
START = datetime(2026, 11, 1, tzinfo=UTC)


@st.composite
def streams(draw: st.DrawFn) -> list[ActivityEvent]:
    count = draw(st.integers(1, 40))
    out = []
    for i in range(count):
        data: dict[str, Any] = {
            "id": f"e{i}",
            "type": draw(st.sampled_from(TYPES)),
            "actor": {"id": draw(st.sampled_from(["a", "b"]))},
            "occurred_at": (
                START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 9)))
            ).isoformat(),
        }
        if draw(st.booleans()):
            data["object"] = {
                "id": draw(st.sampled_from(["o1", "o2", "o3", "o4"])),
                "type": draw(st.sampled_from(["quiz", "lesson", "page"])),
            }
        if draw(st.booleans()):
            data["context"] = {"course": draw(st.sampled_from(["c1", "c2", "c3"]))}
        result: dict[str, Any] = {}
        if draw(st.booleans()):
            result["score"] = draw(st.sampled_from([0.0, 0.4, 0.5, 0.75, 0.9, 1.0]))
        if draw(st.booleans()):
            result["passed"] = draw(st.booleans())
        if draw(st.booleans()):
            result["duration"] = draw(st.sampled_from([30.0, 600.0, 3600.0]))
        if result:
            data["result"] = result
        out.append(parse_event(data))
    return out


def _unexplained(decision: Decision) -> Decision:
    """What ``explain=False`` gives: the same decision without its explanation text."""
    if isinstance(decision, XpAwarded | CurrencyAwarded | BadgeAwarded):
        return replace(decision, explanation="")
    return decision


def _start(actor: str, freezes: int) -> PlayerState:
    return PlayerState(streak=Streak(), freezes=freezes if actor == "a" else 0)


@settings(max_examples=150, deadline=None)
@given(
    streams(),
    st.sampled_from(["UTC", "America/New_York", "Pacific/Kiritimati"]),
    st.integers(0, 2),
    st.booleans(),
    st.booleans(),
)
def test_compiled_engine_equals_the_reference(
    events: list[ActivityEvent], zone: str, freezes: int, book: bool, in_order: bool
) -> None:
    """``in_order``: the stream sorted by event time, as a replay feeds it (the in-place
    window tallies take their fast path then); otherwise late deliveries are mixed in."""
    rules = BOOK if book else RULES
    if in_order:
        events = sorted(events, key=lambda e: e.occurred_at)
    reference: dict[str, PlayerState] = {}
    pure: dict[str, PlayerState] = {}
    working: dict[str, WorkingState] = {}
    counting: dict[str, WorkingState] = {}
    for event in events:
        actor = event.actor.id or ""
        ref_state = reference.get(actor) or _start(actor, freezes)
        expected, reference[actor] = reference_evaluate(event, ref_state, rules, zone)
        got, pure[actor] = evaluate(event, pure.get(actor) or _start(actor, freezes), rules, zone)
        assert got == expected
        state = working.setdefault(actor, WorkingState(_start(actor, freezes)))
        assert evaluate_into(event, state, rules, zone) == expected
        quiet = counting.setdefault(actor, WorkingState(_start(actor, freezes)))
        counted = evaluate_into(event, quiet, rules, zone, explain=False)
        assert counted == [_unexplained(d) for d in expected]
    for actor, state in reference.items():
        assert pure[actor] == state
        assert working[actor].freeze() == state
        assert counting[actor].freeze() == state


def test_pure_evaluate_leaves_the_given_state_unchanged() -> None:
    """The copy on write of engine/state.py: the caller's frozen state keeps its maps."""
    events = [
        parse_event(
            {
                "id": f"e{i}",
                "type": t,
                "actor": {"id": "a"},
                "object": {"id": "o1"},
                "context": {"course": "c1"},
                "result": {"score": 0.9, "passed": True},
                "occurred_at": (START + timedelta(hours=i)).isoformat(),
            }
        )
        for i, t in enumerate(TYPES * 3)
    ]
    state = PlayerState()
    for event in events[:4]:
        _, state = evaluate(event, state, RULES, "UTC")
    snapshot = state.counters.to_json(), dict(state.badges)
    for event in events[4:]:
        evaluate(event, state, RULES, "UTC")
    assert (state.counters.to_json(), dict(state.badges)) == snapshot


def test_an_event_type_meets_only_its_rules_badges_and_quests() -> None:
    """The per-type plan: video events never see the quiz rules or the quiz-only quest."""
    plan = RULES.compiled.plan("video.watched")
    assert len(plan.xp) == 2
    assert {p.badge.id for p in plan.badges} == {"busy", "sprint", "mixed", "steady"}
    assert [q.id for q in plan.quests] == ["daily", "weekly"]
    assert RULES.compiled.plan("page.viewed").xp == ()
