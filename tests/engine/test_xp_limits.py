"""XP v2 in the engine: conditions, formulas, caps, cooldowns, multipliers, explanations, and
the player's local day across time zones (DST, half-hour shifts, UTC+14, leap day, travel)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from engine.counters import RuleCounters
from engine.decisions import XpAwarded
from engine.evaluate import PlayerState, evaluate
from engine.events import ActivityEvent, parse_event
from engine.rules import RuleBook, RuleSet, parse_rules


def ev(
    event_id: str,
    type_: str = "quiz.submitted",
    *,
    at: str = "2026-03-02T12:00:00Z",
    score: float | None = None,
    passed: bool | None = None,
    obj: str | None = "quiz-1",
    obj_type: str | None = "quiz",
    course: str | None = None,
) -> ActivityEvent:
    data: dict[str, Any] = {
        "id": event_id,
        "type": type_,
        "actor": {"id": "learner-1"},
        "occurred_at": at,
    }
    result = {k: v for k, v in {"score": score, "passed": passed}.items() if v is not None}
    if result:
        data["result"] = result
    if obj is not None:
        data["object"] = {"id": obj, **({"type": obj_type} if obj_type else {})}
    if course is not None:
        data["context"] = {"course": course}
    return parse_event(data)


def rules(*xp: dict[str, Any], multipliers: list[dict[str, Any]] | None = None) -> RuleSet:
    return parse_rules({"version": 2, "xp": list(xp), "multipliers": multipliers or []})


def run(
    ruleset: RuleSet | RuleBook, events: list[ActivityEvent], zone: str = "UTC"
) -> tuple[list[XpAwarded], PlayerState]:
    state = PlayerState()
    out: list[XpAwarded] = []
    for e in events:
        decisions, state = evaluate(e, state, ruleset, zone)
        out += [d for d in decisions if isinstance(d, XpAwarded)]
    return out, state


ACE = {
    "id": "quiz-ace",
    "on": "quiz.submitted",
    "points": 50,
    "when": {"object_type": "quiz", "score_at_least": 0.9},
}


def test_quiz_ace_explains_itself() -> None:
    (award,), _ = run(rules(ACE), [ev("123", score=0.95)])
    assert award.amount == 50
    assert award.explanation == (
        "rule `quiz-ace` matched quiz.submitted event 123: +50 XP "
        "(object type quiz; score 0.95 >= 0.9)"
    )


@pytest.mark.parametrize(
    ("kwargs", "matches"),
    [
        ({"score": 0.9}, True),
        ({"score": 0.89}, False),
        ({"score": None}, False),
        ({"score": 1.0, "obj_type": "survey"}, False),
        ({"score": 1.0, "obj_type": None}, False),
    ],
)
def test_conditions(kwargs: dict[str, Any], matches: bool) -> None:
    found, _ = run(rules(ACE), [ev("e", **kwargs)])
    assert bool(found) is matches


def test_passed_and_course_conditions() -> None:
    rule = {"id": "p", "on": "assignment.graded", "points": 5, "when": {"passed": True}}
    rule2 = {"id": "c", "on": "assignment.graded", "points": 7, "when": {"course": ["a", "b"]}}
    found, _ = run(
        rules(rule, rule2),
        [
            ev("1", "assignment.graded", passed=True, course="a"),
            ev("2", "assignment.graded", passed=False, course="z"),
            ev("3", "assignment.graded", course="b"),
        ],
    )
    assert [(a.rule_id, a.idempotency_key.split("|")[1]) for a in found] == [
        ("p", "1"),
        ("c", "1"),
        ("c", "3"),
    ]
    assert "passed" in found[0].explanation and "course a" in found[1].explanation


def test_formula_points_and_explanation() -> None:
    rule = {"id": "graded", "on": "quiz.submitted", "points": "100 * score"}
    (award,), state = run(rules(rule), [ev("9", score=0.95)])
    assert award.amount == 95 and state.xp == 95
    assert award.explanation == (
        "rule `graded` matched quiz.submitted event 9: +95 XP (100 * score = 95 with score 0.95)"
    )


def test_a_formula_that_cannot_be_computed_awards_nothing() -> None:
    rule = {"id": "bad", "on": "quiz.submitted", "points": "10 / score"}
    found, state = run(rules(rule), [ev("1", score=0.0)])
    assert found == [] and state.xp == 0


def test_first_time_per_object() -> None:
    rule = dict(ACE, when={"score_at_least": 0.5, "first_time_per_object": True})
    found, state = run(
        rules(rule),
        [
            ev("1", score=0.4, obj="q1"),  # does not match: not counted as the first time
            ev("2", score=0.6, obj="q1"),  # first award on q1
            ev("3", score=1.0, obj="q1"),  # not the first time
            ev("4", score=0.7, obj="q2"),
            ev("5", score=0.7, obj=None),  # no object: never first time
        ],
    )
    assert [a.idempotency_key for a in found] == ["api|2|quiz-ace", "api|4|quiz-ace"]
    assert "first time on object q1" in found[0].explanation
    assert state.counters.object_xp == {"quiz-ace|q1": 50, "quiz-ace|q2": 50}


def test_cap_per_object_reduces_then_stops() -> None:
    rule = {"id": "g", "on": "quiz.submitted", "points": "100 * score", "cap": {"per_object": 100}}
    found, _ = run(
        rules(rule),
        [ev("1", score=0.6), ev("2", score=0.7), ev("3", score=0.9), ev("4", score=0.5, obj="q2")],
    )
    assert [a.amount for a in found] == [60, 40, 50]
    assert found[1].explanation.endswith("capped at 100 XP per object)")


def test_cap_per_day_counts_the_local_day() -> None:
    rule = {"id": "l", "on": "lesson.completed", "points": 10, "cap": {"per_day": 25}}
    days = ["2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"]
    found, state = run(
        rules(rule),
        [ev(str(i), "lesson.completed", at=at) for i, at in enumerate(days)]
        + [ev("next", "lesson.completed", at="2026-03-03T08:00:00Z")],
    )
    assert [a.amount for a in found] == [10, 10, 5, 10]
    assert "capped at 25 XP per day (2026-03-02)" in found[2].explanation
    assert state.counters.day_xp == {"l|2026-03-02": 25, "l|2026-03-03": 10}


def test_cooldown_between_identical_actions() -> None:
    rule = {"id": "l", "on": "lesson.completed", "points": 10, "cooldown": "10m"}
    found, _ = run(
        rules(rule),
        [
            ev("1", "lesson.completed", at="2026-03-02T12:00:00Z"),
            ev("2", "lesson.completed", at="2026-03-02T12:09:59Z"),  # too soon
            ev("3", "lesson.completed", at="2026-03-02T12:05:00Z", obj="other"),  # other object
            ev("4", "lesson.completed", at="2026-03-02T12:10:00Z"),  # 10 min after the award
            ev("5", "lesson.completed", at="2026-03-02T12:15:00Z"),  # 5 min after event 4
        ],
    )
    assert [a.idempotency_key.split("|")[1] for a in found] == ["1", "3", "4"]


def test_multipliers_apply_in_their_window_and_multiply() -> None:
    window = {"from": "2026-12-07T00:00:00Z", "until": "2026-12-14T00:00:00Z"}
    ruleset = rules(
        {"id": "q", "on": "quiz.submitted", "points": 15},
        {"id": "other", "on": "quiz.submitted", "points": 10},
        multipliers=[
            {"id": "exam-week", "factor": 2, "rules": ["q"], **window},
            {"id": "bonus", "factor": 1.5, **window},
        ],
    )
    inside, _ = run(ruleset, [ev("1", at="2026-12-08T10:00:00Z")])
    outside, _ = run(ruleset, [ev("2", at="2026-12-14T00:00:00Z")])
    assert [a.amount for a in inside] == [45, 15]  # 15 x2 = 30, x1.5 = 45; 10 x1.5 = 15
    assert "x2 multiplier `exam-week`; x1.5 multiplier `bonus`" in inside[0].explanation
    assert [a.amount for a in outside] == [15, 10]


def test_multiplier_comes_before_the_caps() -> None:
    ruleset = rules(
        {"id": "q", "on": "quiz.submitted", "points": 40, "cap": {"per_day": 50}},
        multipliers=[
            {
                "id": "x",
                "factor": 2,
                "from": "2026-01-01T00:00:00Z",
                "until": "2027-01-01T00:00:00Z",
            }
        ],
    )
    found, _ = run(ruleset, [ev("1"), ev("2", at="2026-03-02T13:00:00Z")])
    assert [a.amount for a in found] == [50]


def test_course_rules_apply_only_to_their_course() -> None:
    tenant = rules({"id": "lesson", "on": "lesson.completed", "points": 10})
    course = parse_rules(
        {"xp": [{"id": "lesson", "on": "lesson.completed", "points": 3}]}, scope="course"
    )
    book = RuleBook(tenant, {"math": course})
    found, state = run(
        book,
        [ev("1", "lesson.completed", course="math"), ev("2", "lesson.completed", course="art")],
    )
    assert [a.amount for a in found] == [3, 10]
    assert state.xp == 13


def test_counters_round_trip_as_json() -> None:
    rule = {
        "id": "g",
        "on": "quiz.submitted",
        "points": 10,
        "cap": {"per_day": 100, "per_object": 30},
        "cooldown": 60,
    }
    _, state = run(rules(rule), [ev("1"), ev("2", at="2026-03-02T13:00:00Z")])
    stored = state.counters.to_json()
    assert stored is not None
    assert RuleCounters.from_json(stored) == state.counters
    assert RuleCounters.from_json(None) == RuleCounters() and RuleCounters().to_json() is None
    assert RuleCounters.from_json({"day_xp": "junk"}) == RuleCounters()


def test_old_day_counters_and_expired_cooldowns_are_dropped() -> None:
    rule = {"id": "l", "on": "lesson.completed", "points": 1, "cap": {"per_day": 5}}
    cool = {"id": "c", "on": "lesson.completed", "points": 1, "cooldown": "1h"}
    _, state = run(
        rules(rule, cool),
        [
            ev("1", "lesson.completed", at="2026-03-01T12:00:00Z"),
            ev("2", "lesson.completed", at="2026-03-20T12:00:00Z", obj="q9"),
        ],
    )
    assert state.counters.day_xp == {"l|2026-03-20": 1}
    moment = datetime(2026, 3, 20, 12, tzinfo=UTC).timestamp()
    assert state.counters.last_award == {"c|q9": int(moment)}  # the 1 March one expired


# --- the player's local day across zones: daily caps and streaks ----------------------------

CAP = rules({"id": "l", "on": "lesson.completed", "points": 10, "cap": {"per_day": 10}})


def local_days(zone: str, *moments: str) -> tuple[list[int], PlayerState]:
    found, state = run(
        CAP, [ev(str(i), "lesson.completed", at=m) for i, m in enumerate(moments)], zone
    )
    return [a.amount for a in found], state


def test_new_york_spring_forward_day() -> None:
    # 2026-03-08: clocks jump 02:00 -> 03:00 EST->EDT. 04:59Z is 23:59 on the 7th (EST);
    # 05:00Z is 00:00 on the 8th; 03:59Z on the 9th is 23:59 on the 8th (EDT).
    amounts, state = local_days(
        "America/New_York",
        "2026-03-08T04:59:00Z",
        "2026-03-08T05:00:00Z",
        "2026-03-09T03:59:00Z",
        "2026-03-09T04:00:00Z",
    )
    assert amounts == [10, 10, 10]  # the 8th (a 23-hour day) caps once
    assert state.streak.current == 3 and state.streak.last_day == date(2026, 3, 9)


def test_new_york_fall_back_day() -> None:
    # 2026-11-01: 02:00 EDT -> 01:00 EST, a 25-hour day from 04:00Z to 05:00Z next day.
    amounts, state = local_days(
        "America/New_York",
        "2026-11-01T04:00:00Z",  # 00:00 EDT on the 1st
        "2026-11-01T05:30:00Z",  # 01:30 EDT
        "2026-11-01T06:30:00Z",  # 01:30 EST (the repeated hour)
        "2026-11-02T04:59:00Z",  # 23:59 EST, still the 1st
        "2026-11-02T05:00:00Z",  # 00:00 on the 2nd
    )
    assert amounts == [10, 10]
    assert state.streak.current == 2


def test_lord_howe_half_hour_shift() -> None:
    # Lord Howe is UTC+10:30 in winter and UTC+11 in summer (DST from 2026-10-04 02:00 local).
    amounts, state = local_days(
        "Australia/Lord_Howe",
        "2026-10-03T13:29:00Z",  # 23:59 on the 3rd (+10:30)
        "2026-10-03T13:30:00Z",  # 00:00 on the 4th
        "2026-10-04T12:59:00Z",  # 23:59 on the 4th (+11)
        "2026-10-04T13:00:00Z",  # 00:00 on the 5th
    )
    assert amounts == [10, 10, 10]
    assert state.streak.current == 3 and state.streak.last_day == date(2026, 10, 5)


def test_kiritimati_utc_plus_14() -> None:
    # 10:00Z on the 2nd is already 00:00 on the 3rd in Kiritimati.
    amounts, state = local_days(
        "Pacific/Kiritimati", "2026-03-02T09:59:00Z", "2026-03-02T10:00:00Z"
    )
    assert amounts == [10, 10]
    assert state.streak.last_day == date(2026, 3, 3) and state.streak.current == 2
    utc_amounts, _ = local_days("UTC", "2026-03-02T09:59:00Z", "2026-03-02T10:00:00Z")
    assert utc_amounts == [10]


def test_leap_day() -> None:
    amounts, state = local_days(
        "Europe/Paris",
        "2028-02-28T12:00:00Z",
        "2028-02-29T12:00:00Z",
        "2028-02-29T22:59:00Z",  # 23:59 on the 29th in Paris
        "2028-02-29T23:00:00Z",  # 00:00 on 1 March
    )
    assert amounts == [10, 10, 10]
    assert state.streak.current == 3 and state.streak.last_day == date(2028, 3, 1)


def test_learner_who_travels_keeps_the_streak_and_caps_by_the_day_where_they_are() -> None:
    state = PlayerState()
    amounts = []
    plan = [
        ("1", "2026-06-01T18:00:00Z", "Europe/London"),  # 19:00 on the 1st in London
        ("2", "2026-06-02T01:00:00Z", "America/Los_Angeles"),  # 18:00 on the 1st in LA
        ("3", "2026-06-02T20:00:00Z", "America/Los_Angeles"),  # 13:00 on the 2nd
        ("4", "2026-06-03T01:00:00Z", "Asia/Tokyo"),  # 10:00 on the 3rd in Tokyo
    ]
    for event_id, at, zone in plan:
        decisions, state = evaluate(ev(event_id, "lesson.completed", at=at), state, CAP, zone)
        amounts += [d.amount for d in decisions if isinstance(d, XpAwarded)]
    assert amounts == [10, 10, 10]  # the second is a second lesson on the 1st, capped
    assert state.streak.current == 3 and state.streak.last_day == date(2026, 6, 3)
