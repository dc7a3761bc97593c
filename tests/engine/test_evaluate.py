"""One engine step: XP per rule, levels, streaks, explanations and idempotency keys."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from engine.decisions import LevelReached, StreakUpdated, XpAwarded
from engine.evaluate import PlayerState, evaluate, idempotency_key
from engine.events import ActivityEvent, parse_event
from engine.rules import DEFAULT_RULES, RuleSet, parse_rules
from engine.streaks import Streak

RULES = parse_rules(DEFAULT_RULES)


def event(
    event_id: str = "e1",
    type_: str = "lesson.completed",
    *,
    at: str = "2026-03-02T12:00:00Z",
    score: float | None = None,
    course: str | None = None,
    source: str | None = None,
) -> ActivityEvent:
    data: dict[str, Any] = {
        "id": event_id,
        "type": type_,
        "actor": {"id": "learner-1"},
        "occurred_at": at,
    }
    if score is not None:
        data["result"] = {"score": score}
    if course is not None:
        data["context"] = {"course": course}
    if source is not None:
        data["source"] = source
    return parse_event(data)


def awards(decisions: list[Any]) -> list[XpAwarded]:
    return [d for d in decisions if isinstance(d, XpAwarded)]


def custom(*rules: dict[str, Any], levels: dict[str, Any] | None = None) -> RuleSet:
    doc: dict[str, Any] = {"xp": list(rules)}
    if levels is not None:
        doc["levels"] = levels
    return parse_rules(doc)


# --- XP -----------------------------------------------------------------------------------------


def test_first_lesson_gives_every_decision_in_order() -> None:
    decisions, state = evaluate(event(course="math-101"), PlayerState(), RULES, "UTC")
    assert decisions == [
        XpAwarded(
            idempotency_key="api|e1|lesson-completed",
            rule_id="lesson-completed",
            amount=10,
            course="math-101",
            explanation="rule `lesson-completed` matched lesson.completed event e1: +10 XP",
        ),
        StreakUpdated(current=1, longest=1, last_day=date(2026, 3, 2)),
    ]
    assert state == PlayerState(xp=10, level=1, streak=Streak(1, 1, date(2026, 3, 2)))


@pytest.mark.parametrize(
    ("type_", "amount"),
    [
        ("session.started", 1),
        ("lesson.completed", 10),
        ("course.completed", 100),
        ("deal.won", 50),
    ],
)
def test_default_flat_rules(type_: str, amount: int) -> None:
    decisions, state = evaluate(event(type_=type_), PlayerState(xp=7), RULES, "UTC")
    assert [a.amount for a in awards(decisions)] == [amount]
    assert state.xp == 7 + amount


def test_award_carries_no_course_when_event_has_none() -> None:
    decisions, _ = evaluate(event(), PlayerState(), RULES, "UTC")
    assert awards(decisions)[0].course is None


def test_each_matching_rule_awards_separately() -> None:
    rules = custom(
        {"id": "base", "on": "lesson.completed", "points": 10},
        {"id": "bonus", "on": "lesson.completed", "points": 3},
        {"id": "other", "on": "quiz.submitted", "points": 99},
    )
    decisions, state = evaluate(event(), PlayerState(xp=5), rules, "UTC")
    got = awards(decisions)
    assert [(a.rule_id, a.amount) for a in got] == [("base", 10), ("bonus", 3)]
    assert [a.idempotency_key for a in got] == ["api|e1|base", "api|e1|bonus"]
    assert state.xp == 18


def test_event_without_rules_awards_nothing_but_counts_for_the_streak() -> None:
    decisions, state = evaluate(event(type_="page.viewed"), PlayerState(xp=40), RULES, "UTC")
    assert decisions == [StreakUpdated(1, 1, date(2026, 3, 2))]
    assert state.xp == 40


@pytest.mark.parametrize(
    ("type_", "score", "amount"),
    [
        ("quiz.submitted", 1.0, 20),
        ("quiz.submitted", 0.5, 10),
        ("quiz.submitted", 0.33, 7),
        ("quiz.submitted", 0.32, 6),
        ("quiz.submitted", 0.01, 0),  # 0.2 rounds to 0: skipped
        ("assignment.graded", 0.85, 26),
        ("assignment.graded", 0.1, 3),
    ],
)
def test_per_score_rounding(type_: str, score: float, amount: int) -> None:
    decisions, state = evaluate(event(type_=type_, score=score), PlayerState(), RULES, "UTC")
    assert [a.amount for a in awards(decisions)] == ([amount] if amount else [])
    assert state.xp == amount


@pytest.mark.parametrize("score", [None, 0.0, 0.02])
def test_zero_point_awards_are_skipped(score: float | None) -> None:
    decisions, state = evaluate(
        event(type_="quiz.submitted", score=score), PlayerState(), RULES, "UTC"
    )
    assert awards(decisions) == []
    assert state.xp == 0


def test_zero_point_rule_is_skipped_but_others_still_award() -> None:
    rules = custom(
        {"id": "nothing", "on": "lesson.completed", "points": 0},
        {"id": "something", "on": "lesson.completed", "points": 4},
    )
    decisions, state = evaluate(event(), PlayerState(), rules, "UTC")
    assert [a.rule_id for a in awards(decisions)] == ["something"]
    assert state.xp == 4


# --- levels -------------------------------------------------------------------------------------


def test_level_reached_when_crossing_a_threshold() -> None:
    decisions, state = evaluate(event(), PlayerState(xp=95, level=1), RULES, "UTC")
    assert LevelReached(level=2, previous=1) in decisions
    assert state.level == 2 and state.xp == 105


def test_landing_exactly_on_a_threshold_reaches_the_level() -> None:
    decisions, state = evaluate(event(), PlayerState(xp=90, level=1), RULES, "UTC")
    assert LevelReached(level=2, previous=1) in decisions
    assert state.xp == 100


def test_no_level_reached_without_an_increase() -> None:
    decisions, state = evaluate(event(), PlayerState(xp=105, level=2), RULES, "UTC")
    assert not any(isinstance(d, LevelReached) for d in decisions)
    assert state.level == 2


def test_no_level_reached_for_an_event_without_xp() -> None:
    decisions, state = evaluate(event(type_="page.viewed"), PlayerState(xp=99), RULES, "UTC")
    assert not any(isinstance(d, LevelReached) for d in decisions)
    assert state.level == 1


def test_skipping_levels_gives_one_decision_for_the_new_level() -> None:
    rules = custom({"id": "big", "on": "deal.won", "points": 600})
    decisions, state = evaluate(event(type_="deal.won"), PlayerState(), rules, "UTC")
    assert [d for d in decisions if isinstance(d, LevelReached)] == [LevelReached(4, 1)]
    assert state.level == 4


def test_level_never_goes_down_when_the_curve_gets_harder() -> None:
    # The player reached level 5 under an older, easier curve.
    decisions, state = evaluate(event(), PlayerState(xp=50, level=5), RULES, "UTC")
    assert not any(isinstance(d, LevelReached) for d in decisions)
    assert state.level == 5
    assert state.xp == 60


def test_level_reached_uses_the_rule_sets_curve() -> None:
    rules = custom(
        {"id": "l", "on": "lesson.completed", "points": 10}, levels={"table": [0, 10, 20]}
    )
    decisions, state = evaluate(event(), PlayerState(), rules, "UTC")
    assert LevelReached(2, 1) in decisions
    decisions, state = evaluate(event("e2"), state, rules, "UTC")
    assert LevelReached(3, 2) in decisions
    decisions, state = evaluate(event("e3"), state, rules, "UTC")
    assert not any(isinstance(d, LevelReached) for d in decisions)  # top of the table
    assert state == PlayerState(xp=30, level=3, streak=Streak(1, 1, date(2026, 3, 2)))


def test_decision_order_awards_then_level_then_streak() -> None:
    decisions, _ = evaluate(event(), PlayerState(xp=95), RULES, "UTC")
    assert [type(d) for d in decisions] == [XpAwarded, LevelReached, StreakUpdated]


# --- streaks ------------------------------------------------------------------------------------


def test_streak_updates_day_by_day() -> None:
    state = PlayerState()
    decisions, state = evaluate(event("a", at="2026-03-02T09:00:00Z"), state, RULES, "UTC")
    assert StreakUpdated(1, 1, date(2026, 3, 2)) in decisions

    decisions, state = evaluate(event("b", at="2026-03-02T21:00:00Z"), state, RULES, "UTC")
    assert not any(isinstance(d, StreakUpdated) for d in decisions)  # same day

    decisions, state = evaluate(event("c", at="2026-03-03T09:00:00Z"), state, RULES, "UTC")
    assert StreakUpdated(2, 2, date(2026, 3, 3)) in decisions

    decisions, state = evaluate(event("d", at="2026-03-01T09:00:00Z"), state, RULES, "UTC")
    assert not any(isinstance(d, StreakUpdated) for d in decisions)  # late delivery

    decisions, state = evaluate(event("e", at="2026-03-06T09:00:00Z"), state, RULES, "UTC")
    assert StreakUpdated(1, 2, date(2026, 3, 6)) in decisions  # gap
    assert state.streak == Streak(1, 2, date(2026, 3, 6))
    assert state.xp == 50  # every event still earned its XP


def test_streak_day_is_taken_in_the_given_zone() -> None:
    late_evening_utc = event(at="2026-01-15T11:30:00Z")  # 00:30 on the 16th in Auckland
    utc_decisions, _ = evaluate(late_evening_utc, PlayerState(), RULES, "UTC")
    nz_decisions, _ = evaluate(late_evening_utc, PlayerState(), RULES, "Pacific/Auckland")
    assert StreakUpdated(1, 1, date(2026, 1, 15)) in utc_decisions
    assert StreakUpdated(1, 1, date(2026, 1, 16)) in nz_decisions


# --- explanations -------------------------------------------------------------------------------


def test_explanation_names_rule_event_and_amount() -> None:
    decisions, _ = evaluate(event("lesson-77"), PlayerState(), RULES, "UTC")
    text = awards(decisions)[0].explanation
    assert "`lesson-completed`" in text
    assert "lesson.completed" in text
    assert "lesson-77" in text
    assert "+10 XP" in text


def test_per_score_explanation_shows_the_arithmetic() -> None:
    decisions, _ = evaluate(event("q1", "quiz.submitted", score=0.5), PlayerState(), RULES, "UTC")
    assert awards(decisions)[0].explanation == (
        "rule `quiz-submitted` matched quiz.submitted event q1: +10 XP (20 x score 0.5)"
    )


# --- idempotency keys ---------------------------------------------------------------------------


def test_idempotency_key_format() -> None:
    assert idempotency_key(event("e9", source="moodle"), "lesson-completed") == (
        "moodle|e9|lesson-completed"
    )


def test_keys_differ_per_rule() -> None:
    e = event()
    assert idempotency_key(e, "a") != idempotency_key(e, "b")


def test_keys_differ_per_event_and_per_source() -> None:
    keys = {
        idempotency_key(event("e1"), "r"),
        idempotency_key(event("e2"), "r"),
        idempotency_key(event("e1", source="moodle"), "r"),
    }
    assert len(keys) == 3


def test_keys_are_stable_across_state_time_zone_and_reparse() -> None:
    e = event("stable", course="c1")
    first, _ = evaluate(e, PlayerState(), RULES, "UTC")
    again, _ = evaluate(
        parse_event(e.to_dict()),
        PlayerState(xp=5000, level=9, streak=Streak(3, 4, date(2026, 3, 1))),
        RULES,
        "Pacific/Kiritimati",
    )
    assert [a.idempotency_key for a in awards(first)] == ["api|stable|lesson-completed"]
    assert awards(first) == awards(again)


def test_same_event_evaluated_twice_gives_the_same_decisions() -> None:
    e = event("q", "quiz.submitted", score=0.75, course="c")
    state = PlayerState(xp=90)
    assert evaluate(e, state, RULES, "Europe/Paris") == evaluate(e, state, RULES, "Europe/Paris")


def test_key_fits_the_ledger_column() -> None:
    # xp_ledger.idempotency_key is VARCHAR(450): the longest source, id and rule id must fit.
    e = event("x" * 255, source="s" * 64)
    assert len(idempotency_key(e, "r" * 100)) <= 450


def test_input_state_is_not_changed() -> None:
    state = PlayerState(xp=95, level=1, streak=Streak(1, 1, date(2026, 3, 1)))
    evaluate(event(), state, RULES, "UTC")
    assert state == PlayerState(xp=95, level=1, streak=Streak(1, 1, date(2026, 3, 1)))
