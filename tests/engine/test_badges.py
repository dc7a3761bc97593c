"""Badges in the engine: every kind of criterion, all-of / any-of, windows, tiers, scope, expiry,
explanations, and the errors of a badge document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.decisions import BadgeAwarded
from engine.evaluate import PlayerState, evaluate
from engine.events import ActivityEvent, parse_event
from engine.rules import InvalidRules, RuleSet, parse_rules

XP = [{"id": "lesson", "on": "lesson.completed", "points": 10}]


def ev(
    event_id: str,
    type_: str = "lesson.completed",
    *,
    day: int = 1,
    hour: int = 12,
    score: float | None = None,
    obj: str | None = None,
    course: str | None = "c1",
    duration: float | None = None,
) -> ActivityEvent:
    data: dict[str, Any] = {
        "id": event_id,
        "type": type_,
        "actor": {"id": "p"},
        "occurred_at": f"2026-03-{day:02d}T{hour:02d}:00:00Z",
    }
    result = {k: v for k, v in {"score": score, "duration": duration}.items() if v is not None}
    if result:
        data["result"] = result
    if obj:
        data["object"] = {"id": obj, "type": "quiz"}
    if course:
        data["context"] = {"course": course}
    return parse_event(data)


def badge_rules(*badges: dict[str, Any], levels: dict[str, Any] | None = None) -> RuleSet:
    doc: dict[str, Any] = {"version": 2, "xp": XP, "badges": list(badges)}
    if levels:
        doc["levels"] = levels
    return parse_rules(doc)


def run(rules: RuleSet, events: list[ActivityEvent], state: PlayerState | None = None):
    state = state or PlayerState()
    out: list[BadgeAwarded] = []
    for e in events:
        decisions, state = evaluate(e, state, rules, "UTC")
        out += [d for d in decisions if isinstance(d, BadgeAwarded)]
    return out, state


def test_count_badge_is_awarded_once_with_its_explanation() -> None:
    rules = badge_rules(
        {
            "id": "reader",
            "name": "Reader",
            "criteria": {"count": 3, "of": {"on": "lesson.completed"}},
        }
    )
    awards, state = run(rules, [ev(str(i), day=1 + i) for i in range(5)])
    (award,) = awards
    assert award.idempotency_key.startswith("api|2|badge:reader:0:")
    assert award.explanation == "badge `reader` Reader earned with event 2: events 3 >= 3"
    assert award.course is None and award.awarded_at == datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert state.badges == {"reader|*": (0, None)}


def test_tiers_are_awarded_in_order_and_each_once() -> None:
    rules = badge_rules(
        {
            "id": "quizzer",
            "name": "Quizzer",
            "tiers": [
                {"name": "bronze", "criteria": {"count": 1, "of": {"on": "quiz.submitted"}}},
                {"name": "silver", "criteria": {"count": 3, "of": {"on": "quiz.submitted"}}},
                {"name": "gold", "criteria": {"count": 5, "of": {"on": "quiz.submitted"}}},
            ],
        }
    )
    awards, state = run(rules, [ev(str(i), "quiz.submitted", obj=f"q{i}") for i in range(6)])
    assert [(a.tier, a.tier_name, a.idempotency_key.split("|")[1]) for a in awards] == [
        (0, "bronze", "0"),
        (1, "silver", "2"),
        (2, "gold", "4"),
    ]
    assert "Quizzer (silver)" in awards[1].explanation
    assert state.badges["quizzer|*"] == (2, None)


def test_sum_distinct_best_score_and_conditions() -> None:
    rules = badge_rules(
        {
            "id": "sum",
            "criteria": {"sum_of": "score", "at_least": 2.5, "of": {"on": "quiz.submitted"}},
        },
        {"id": "time", "criteria": {"sum_of": "duration", "at_least": 3600}},
        {"id": "explorer", "criteria": {"distinct_objects": 3, "of": {"on": "quiz.submitted"}}},
        {
            "id": "ace",
            "criteria": {"best_score": 0.95, "of": {"when": {"object_type": "quiz"}}},
        },
    )
    events = [
        ev("1", "quiz.submitted", score=0.9, obj="a", duration=1800),
        ev("2", "quiz.submitted", score=0.9, obj="a", duration=1800),
        ev("3", "quiz.submitted", score=0.8, obj="b"),
        ev("4", "quiz.submitted", score=0.96, obj="c"),
    ]
    awards, _ = run(rules, events)
    assert [(a.badge_id, a.idempotency_key.split("|")[1]) for a in awards] == [
        ("time", "2"),
        ("sum", "3"),
        ("explorer", "4"),
        ("ace", "4"),
    ]
    assert awards[1].explanation.endswith("total score 2.6 >= 2.5")


def test_all_of_any_of_streak_level_and_xp() -> None:
    rules = badge_rules(
        {
            "id": "dedicated",
            "criteria": {
                "all_of": [
                    {"streak": 3},
                    {"any_of": [{"level": 9}, {"xp": 30}]},
                ]
            },
        }
    )
    awards, _ = run(rules, [ev("1", day=1), ev("2", day=2), ev("3", day=3), ev("4", day=4)])
    (award,) = awards
    assert award.idempotency_key.split("|")[1] == "3"
    assert award.explanation.endswith("day streak 3 >= 3; XP 30 >= 30")


def test_time_window() -> None:
    rules = badge_rules(
        {"id": "sprint", "criteria": {"count": 3, "within": "2d", "of": {"on": "lesson.completed"}}}
    )
    spread, _ = run(rules, [ev("1", day=1), ev("2", day=3), ev("3", day=5)])
    assert spread == []
    tight, _ = run(rules, [ev("1", day=1), ev("2", day=3), ev("3", day=3, hour=13), ev("4", day=4)])
    assert [a.idempotency_key.split("|")[1] for a in tight] == ["4"]
    assert tight[0].explanation.endswith("events 3 >= 3 within 2d")


def test_course_scope_counts_and_awards_per_course() -> None:
    rules = badge_rules(
        {"id": "regular", "scope": "course", "criteria": {"count": 2}},
    )
    awards, state = run(
        rules,
        [
            ev("1", course="a"),
            ev("2", course="b"),
            ev("3", course="a"),
            ev("4", course=None),
            ev("5", course="b"),
        ],
    )
    assert [(a.course, a.idempotency_key.split("|")[1]) for a in awards] == [("a", "3"), ("b", "5")]
    assert "in course a" in awards[0].explanation
    assert set(state.badges) == {"regular|a", "regular|b"}


def test_expiry_lets_a_badge_be_earned_again_after_it_lapses() -> None:
    rules = badge_rules(
        {"id": "weekly", "expires_after": "7d", "criteria": {"count": 1, "within": "1d"}}
    )
    awards, state = run(rules, [ev("1", day=1), ev("2", day=5), ev("3", day=9)])
    assert [a.idempotency_key.split("|")[1] for a in awards] == ["1", "3"]
    assert awards[0].expires_at == datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert state.badges["weekly|*"][0] == 0


def test_a_revoked_badge_held_in_state_is_not_awarded_again() -> None:
    rules = badge_rules({"id": "reader", "criteria": {"count": 1}})
    awards, _ = run(rules, [ev("1")], PlayerState(badges={"reader|*": (0, None)}))
    assert awards == []


def test_badge_tallies_survive_the_json_round_trip() -> None:
    from engine.counters import RuleCounters

    rules = badge_rules({"id": "reader", "criteria": {"count": 3, "within": "7d"}})
    _, state = run(rules, [ev("1"), ev("2", day=2)])
    again = PlayerState(
        xp=state.xp,
        level=state.level,
        streak=state.streak,
        counters=RuleCounters.from_json(state.counters.to_json()),
    )
    awards, _ = run(rules, [ev("3", day=3)], again)
    assert len(awards) == 1


def test_badge_errors_carry_paths() -> None:
    doc = {
        "badges": [
            {"id": "Bad"},
            {"id": "a", "criteria": {"count": 0}},
            {"id": "b", "criteria": {"count": 1, "level": 2}},
            {"id": "c", "tiers": [{"name": "gold", "criteria": {"sum_of": "xp"}}], "x": 1},
            {"id": "d", "criteria": {"all_of": []}, "scope": "world", "expires_after": "soon"},
            {"id": "e", "criteria": {"best_score": 2, "of": {"on": 5, "when": {"passed": 1}}}},
            {"id": "f", "criteria": {"streak": 3, "of": {}}, "tiers": []},
            {"id": "g", "criteria": {"level": 2}},
            {"id": "g", "criteria": {"level": 3}},
        ]
    }
    with pytest.raises(InvalidRules) as info:
        parse_rules(doc)
    assert info.value.errors == [
        "badges[0].id: must be 1-100 lowercase letters, digits or . _ -",
        "badges[0]: needs criteria (one-time) or tiers (bronze/silver/gold), not both",
        "badges[1].criteria.count: must be a positive integer",
        "badges[2].criteria: needs exactly one of all_of, any_of, count, sum_of, "
        "distinct_objects, best_score, streak, level, xp",
        "badges[3].tiers[0].criteria.sum_of: must be one of score, duration",
        "badges[3].tiers[0].criteria.at_least: must be a positive number",
        "badges[3].x: unknown field",
        "badges[4].scope: must be tenant or course",
        "badges[4].expires_after: must be seconds or a duration such as 365d",
        "badges[4].criteria.all_of: must be a non-empty list of criteria",
        "badges[5].criteria.best_score: must be a number above 0 and at most 1",
        "badges[5].criteria.of.on: must be an event type or a list of them",
        "badges[5].criteria.of.when.passed: must be true or false",
        "badges[6]: needs criteria (one-time) or tiers (bronze/silver/gold), not both",
        "badges[8].id: duplicate badge id 'g'",
    ]
