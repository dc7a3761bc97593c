"""Rule format v2: new fields parse, every error has its path, course sets merge on top."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.rules import InvalidRules, RuleBook, parse_rules
from engine.xp_rules import Conditions, parse_duration


def errors(document: Any, **kw: Any) -> list[str]:
    with pytest.raises(InvalidRules) as info:
        parse_rules(document, **kw)
    return info.value.errors


def test_a_full_v2_rule_parses() -> None:
    rules = parse_rules(
        {
            "version": 2,
            "description": "x",
            "xp": [
                {
                    "id": "quiz-ace",
                    "on": "quiz.submitted",
                    "points": "100 * score",
                    "when": {
                        "object_type": ["quiz", "exam"],
                        "course": "c1",
                        "score_at_least": 0.9,
                        "passed": True,
                        "first_time_per_object": True,
                    },
                    "cap": {"per_day": 300, "per_object": 100},
                    "cooldown": "10m",
                    "description": "an excellent first attempt",
                }
            ],
            "multipliers": [
                {
                    "id": "exam-week",
                    "factor": 2,
                    "from": "2026-12-07T00:00:00Z",
                    "until": "2026-12-14T00:00:00+01:00",
                    "rules": ["quiz-ace"],
                }
            ],
        }
    )
    (rule,) = rules.xp
    assert rule.formula is not None and rule.formula.source == "100 * score"
    assert rule.when == Conditions(frozenset({"quiz", "exam"}), frozenset({"c1"}), 0.9, True, True)
    assert (rule.cap_per_day, rule.cap_per_object, rule.cooldown) == (300, 100, 600)
    (m,) = rules.multipliers
    assert m.factor == 2.0 and m.rules == frozenset({"quiz-ace"})
    assert m.start == datetime(2026, 12, 7, tzinfo=UTC)
    assert m.applies("quiz-ace", datetime(2026, 12, 13, 22, 59, tzinfo=UTC))
    assert not m.applies("quiz-ace", datetime(2026, 12, 13, 23, 0, tzinfo=UTC))  # until excl.
    assert not m.applies("other", datetime(2026, 12, 8, tzinfo=UTC))


@pytest.mark.parametrize(
    ("value", "seconds"), [(30, 30), ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400)]
)
def test_durations(value: Any, seconds: int) -> None:
    assert parse_duration(value) == seconds


def test_every_v2_error_has_its_path() -> None:
    doc = {
        "version": 3,
        "description": 5,
        "xp": [
            {
                "id": "a",
                "on": "quiz.submitted",
                "points": "100 * grade",
                "per_score": True,
                "when": {
                    "object_type": [],
                    "course": 5,
                    "score_at_least": 1.5,
                    "passed": "yes",
                    "first_time_per_object": 1,
                    "colour": "red",
                },
                "cap": {"per_day": 0, "per_object": 2.5, "per_week": 1},
                "cooldown": "soon",
            },
            {"id": "b", "on": "a.b", "points": 1, "when": "always", "cap": 5},
            {"id": "c", "on": "a.b", "points": 2_000_000, "per_score": True},
        ],
        "multipliers": [
            {"id": "m", "factor": 0, "from": "2026-12-07", "until": 5, "x": 1},
            {
                "id": "n",
                "factor": 11,
                "from": "2026-12-07T00:00:00Z",
                "until": "2026-12-01T00:00:00Z",
                "rules": ["zzz"],
            },
            "nope",
        ],
    }
    assert errors(doc) == [
        "version: must be 1 or 2",
        "description: must be text",
        "xp[0].points: unknown name 'grade' (known: duration, passed, score)",
        "xp[0].when.object_type: must be a name or a list of names",
        "xp[0].when.course: must be a course id or a list of course ids",
        "xp[0].when.score_at_least: must be a number between 0 and 1",
        "xp[0].when.passed: must be true or false",
        "xp[0].when.first_time_per_object: must be true or false",
        "xp[0].when.colour: unknown field",
        "xp[0].cap.per_day: must be a positive integer (XP)",
        "xp[0].cap.per_object: must be a positive integer (XP)",
        "xp[0].cap.per_week: unknown field",
        "xp[0].cooldown: must be seconds or a duration such as 30s, 10m, 1d",
        "xp[1].when: must be an object",
        "xp[1].cap: must be an object with per_day and/or per_object",
        "xp[2].points: must be at most 1000000",
        "multipliers[0].factor: must be a number above 0 and at most 10",
        "multipliers[0].from: must include a time zone offset (for example Z or +02:00)",
        "multipliers[0].until: must be an ISO 8601 timestamp string",
        "multipliers[0].x: unknown field",
        "multipliers[1].factor: must be a number above 0 and at most 10",
        "multipliers[1].until: must be after from",
        "multipliers[2]: must be an object",
    ]


def test_a_multiplier_must_name_known_rules() -> None:
    doc = {
        "xp": [{"id": "a", "on": "a.b", "points": 1}],
        "multipliers": [
            {
                "id": "m",
                "factor": 2,
                "from": "2026-12-07T00:00:00Z",
                "until": "2026-12-08T00:00:00Z",
                "rules": ["a", "zzz"],
            }
        ],
    }
    assert errors(doc) == ["multipliers[0].rules: unknown rule id 'zzz'"]


def test_formula_and_per_score_do_not_mix() -> None:
    doc = {"xp": [{"id": "a", "on": "a.b", "points": "10 * score", "per_score": True}]}
    assert errors(doc) == ["xp[0].per_score: cannot be combined with a formula; use score in it"]


def test_a_course_rule_set_has_no_levels_and_may_name_tenant_rules() -> None:
    doc = {"xp": [], "levels": {"table": [0, 10]}, "multipliers": []}
    assert errors(doc, scope="course") == ["levels: only the tenant rule set defines levels"]
    course = parse_rules(
        {
            "multipliers": [
                {
                    "id": "m",
                    "factor": 2,
                    "from": "2026-01-01T00:00:00Z",
                    "until": "2027-01-01T00:00:00Z",
                    "rules": ["tenant-rule"],
                }
            ]
        },
        scope="course",
    )
    assert course.multipliers[0].rules == frozenset({"tenant-rule"})


def test_course_rules_go_on_top_and_replace_by_id() -> None:
    tenant = parse_rules(
        {
            "xp": [
                {"id": "lesson", "on": "lesson.completed", "points": 10},
                {"id": "login", "on": "session.started", "points": 1},
            ],
            "levels": {"table": [0, 50]},
        }
    )
    course = parse_rules(
        {
            "xp": [
                {"id": "lesson", "on": "lesson.completed", "points": 3},
                {"id": "proof", "on": "assignment.graded", "points": 40},
            ]
        },
        scope="course",
    )
    book = RuleBook(tenant, {"math": course})
    merged = book.for_course("math")
    assert [(r.id, r.points) for r in merged.xp] == [("login", 1), ("lesson", 3), ("proof", 40)]
    assert merged.levels == tenant.levels
    assert book.for_course("history") is tenant
    assert book.for_course(None) is tenant
    assert book.for_course("math") is merged  # merged once, then reused
