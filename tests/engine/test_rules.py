"""Rule documents: the defaults parse, and every error carries its path."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from engine.levels import formula_curve
from engine.rules import DEFAULT_RULES, InvalidRules, RuleSet, XpRule, parse_rules


def rules_errors(document: Any) -> list[str]:
    with pytest.raises(InvalidRules) as info:
        parse_rules(document)
    return info.value.errors


def xp_doc(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"xp": list(rules)}


GOOD = {"id": "good", "on": "lesson.completed", "points": 5}


# --- the defaults -------------------------------------------------------------------------------


def test_default_rules_parse() -> None:
    rules = parse_rules(DEFAULT_RULES)
    assert isinstance(rules, RuleSet)
    assert rules.xp == (
        XpRule("session-started", "session.started", 1),
        XpRule("lesson-completed", "lesson.completed", 10),
        XpRule("quiz-submitted", "quiz.submitted", 20, per_score=True),
        XpRule("assignment-graded", "assignment.graded", 30, per_score=True),
        XpRule("course-completed", "course.completed", 100),
        XpRule("deal-won", "deal.won", 50),
    )
    assert rules.levels == formula_curve(100, 1.5)


def test_parsing_does_not_mutate_the_defaults() -> None:
    snapshot = copy.deepcopy(DEFAULT_RULES)
    parse_rules(DEFAULT_RULES)
    assert snapshot == DEFAULT_RULES


def test_rules_for_selects_by_event_type_in_document_order() -> None:
    rules = parse_rules(
        xp_doc(
            {"id": "a", "on": "lesson.completed", "points": 1},
            {"id": "b", "on": "quiz.submitted", "points": 2},
            {"id": "c", "on": "lesson.completed", "points": 3},
        )
    )
    assert [r.id for r in rules.rules_for("lesson.completed")] == ["a", "c"]
    assert [r.id for r in rules.rules_for("quiz.submitted")] == ["b"]
    assert rules.rules_for("page.viewed") == ()


def test_empty_document_gets_no_xp_and_the_default_curve() -> None:
    rules = parse_rules({})
    assert rules.xp == ()
    assert rules.levels == parse_rules(DEFAULT_RULES).levels


def test_table_levels_in_a_rule_document() -> None:
    rules = parse_rules({"xp": [GOOD], "levels": {"table": [0, 10, 30]}})
    assert rules.levels.thresholds == (0, 10, 30)


def test_per_score_defaults_to_false_and_zero_points_allowed() -> None:
    rules = parse_rules(xp_doc({"id": "zero", "on": "page.viewed", "points": 0}))
    assert rules.xp == (XpRule("zero", "page.viewed", 0, per_score=False),)


# --- points_for ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "score", "expected"),
    [
        (20, 1.0, 20),
        (20, 0.5, 10),
        (20, 0.33, 7),  # 6.6 rounds up
        (20, 0.32, 6),  # 6.4 rounds down
        (30, 0.85, 26),  # 25.5 -> 26 (round half to even)
        (30, 0.25, 8),  # 7.5 -> 8 (round half to even)
        (10, 0.25, 2),  # 2.5 -> 2 (round half to even: Python's round)
        (20, 0.0, 0),
        (20, None, 0),  # no score: nothing to scale
        (0, 1.0, 0),
    ],
)
def test_per_score_rounding(points: int, score: float | None, expected: int) -> None:
    assert XpRule("r", "quiz.submitted", points, per_score=True).points_for(score) == expected


@pytest.mark.parametrize("score", [None, 0.0, 0.5, 1.0])
def test_flat_rule_ignores_score(score: float | None) -> None:
    assert XpRule("r", "lesson.completed", 10).points_for(score) == 10


# --- xp errors ----------------------------------------------------------------------------------


# A string is a formula in format v2 (docs/rules.md), so "10" is no longer an error here.
@pytest.mark.parametrize("points", [-1, 1.5, 10.0, True, False, None, [10]])
def test_bad_points_names_the_rule_index(points: Any) -> None:
    doc = xp_doc(GOOD, {"id": "second", "on": "quiz.submitted", "points": points})
    assert rules_errors(doc) == ["xp[1].points: must be a non-negative integer"]


def test_missing_points() -> None:
    doc = xp_doc({"id": "x", "on": "quiz.submitted"})
    assert rules_errors(doc) == ["xp[0].points: must be a non-negative integer"]


def test_duplicate_ids() -> None:
    doc = xp_doc(GOOD, {"id": "other", "on": "a.b", "points": 1}, dict(GOOD, points=9))
    assert rules_errors(doc) == ["xp[2].id: duplicate rule id 'good'"]


@pytest.mark.parametrize(
    "rule_id", ["", "Bad", "has space", "-leading", "x" * 101, 5, None, "ok\n"]
)
def test_bad_rule_id(rule_id: Any) -> None:
    # "ok\n" is a regression: ``re.match`` with ``$`` accepted a trailing newline.
    doc = xp_doc({"id": rule_id, "on": "a.b", "points": 1})
    assert rules_errors(doc) == ["xp[0].id: must be 1-100 lowercase letters, digits or . _ -"]


def test_rule_id_at_max_length() -> None:
    assert parse_rules(xp_doc({"id": "x" * 100, "on": "a.b", "points": 1})).xp[0].id == "x" * 100


@pytest.mark.parametrize("on", [None, "", 3, ["a.b"]])
def test_bad_on(on: Any) -> None:
    doc = xp_doc({"id": "r", "on": on, "points": 1})
    assert rules_errors(doc) == ["xp[0].on: must be an event type such as lesson.completed"]


@pytest.mark.parametrize("per_score", ["yes", 1, 0, None])
def test_bad_per_score(per_score: Any) -> None:
    doc = xp_doc({"id": "r", "on": "a.b", "points": 1, "per_score": per_score})
    assert rules_errors(doc) == ["xp[0].per_score: must be true or false"]


def test_unknown_fields_are_named_in_sorted_order() -> None:
    # ``when`` became a known field in format v2; ``whence`` still is not.
    doc = xp_doc(GOOD, dict(GOOD, id="other", whence="always", bonus=3))
    assert rules_errors(doc) == ["xp[1].bonus: unknown field", "xp[1].whence: unknown field"]


def test_unknown_sections() -> None:
    doc = {"xp": [GOOD], "quest": [], "shops": []}
    assert rules_errors(doc) == ["quest: unknown section", "shops: unknown section"]


@pytest.mark.parametrize("xp", [{"id": "a"}, "lesson.completed", 3])
def test_xp_must_be_a_list(xp: Any) -> None:
    assert rules_errors({"xp": xp}) == ["xp: must be a list of rules"]


@pytest.mark.parametrize("rule", ["lesson.completed", 5, None, ["id", "on"]])
def test_each_rule_must_be_an_object(rule: Any) -> None:
    assert rules_errors(xp_doc(GOOD, rule)) == ["xp[1]: must be an object"]


@pytest.mark.parametrize("document", [[], "xp", None, 3])
def test_document_must_be_an_object(document: Any) -> None:
    assert rules_errors(document) == ["$: a rule set must be an object"]


def test_every_error_in_a_rule_is_reported() -> None:
    doc = xp_doc({"id": "Bad Id", "on": "", "points": -3, "per_score": "no", "extra": 1})
    assert rules_errors(doc) == [
        "xp[0].id: must be 1-100 lowercase letters, digits or . _ -",
        "xp[0].on: must be an event type such as lesson.completed",
        "xp[0].points: must be a non-negative integer",
        "xp[0].per_score: must be true or false",
        "xp[0].extra: unknown field",
    ]


def test_errors_across_sections_are_all_reported() -> None:
    doc = {
        "quest": {},
        "xp": [GOOD, {"id": "good", "on": "a.b", "points": 1}, {"id": "x", "on": "a.b"}],
        "levels": {"table": [5, 10]},
    }
    errors = rules_errors(doc)
    assert errors == [
        "quest: unknown section",
        "xp[1].id: duplicate rule id 'good'",
        "xp[2].points: must be a non-negative integer",
        "levels.table[0]: level 1 must need 0 XP",
    ]
    with pytest.raises(InvalidRules, match=r"xp\[2\]\.points"):
        parse_rules(doc)


# --- level errors, prefixed with the ``levels`` path ---------------------------------------------


@pytest.mark.parametrize(
    ("levels", "errors"),
    [
        ([0, 100], ["levels: must be an object with a formula or a table"]),
        ("formula", ["levels: must be an object with a formula or a table"]),
        ({}, ["levels: needs a formula {base, exponent} or a table"]),
        ({"formula": 100}, ["levels: needs a formula {base, exponent} or a table"]),
        ({"table": []}, ["levels.table: must be a non-empty list of integers"]),
        ({"table": "0,100"}, ["levels.table: must be a non-empty list of integers"]),
        ({"table": [0, "100"]}, ["levels.table: must be a non-empty list of integers"]),
        ({"table": [0, 100.0]}, ["levels.table: must be a non-empty list of integers"]),
        ({"table": [0, True]}, ["levels.table: must be a non-empty list of integers"]),
        ({"table": [1, 100]}, ["levels.table[0]: level 1 must need 0 XP"]),
        ({"table": [0, 100, 100]}, ["levels.table: thresholds must strictly increase"]),
        ({"table": [0, 100, 50]}, ["levels.table: thresholds must strictly increase"]),
        ({"formula": {"exponent": 1.5}}, ["levels.formula.base: must be a positive number"]),
        ({"formula": {"base": 0}}, ["levels.formula.base: must be a positive number"]),
        ({"formula": {"base": -100}}, ["levels.formula.base: must be a positive number"]),
        ({"formula": {"base": "100"}}, ["levels.formula.base: must be a positive number"]),
        ({"formula": {"base": True}}, ["levels.formula.base: must be a positive number"]),
        ({"formula": {"base": math.nan}}, ["levels.formula.base: must be a positive number"]),
        (
            {"formula": {"base": 100, "exponent": 0.4}},
            ["levels.formula.exponent: must be a number between 0.5 and 4"],
        ),
        (
            {"formula": {"base": 100, "exponent": 4.01}},
            ["levels.formula.exponent: must be a number between 0.5 and 4"],
        ),
        (
            {"formula": {"base": 100, "exponent": "1.5"}},
            ["levels.formula.exponent: must be a number between 0.5 and 4"],
        ),
        (
            {"formula": {"base": 100, "exponent": math.nan}},
            ["levels.formula.exponent: must be a number between 0.5 and 4"],
        ),
        (
            {"formula": {"base": 100, "exponent": math.inf}},
            ["levels.formula.exponent: must be a number between 0.5 and 4"],
        ),
        (
            {"formula": {"base": 100, "exponent": True}},
            ["levels.formula.exponent: must be a number between 0.5 and 4"],
        ),
        (
            {"formula": {"base": -1, "exponent": 9}},
            [
                "levels.formula.base: must be a positive number",
                "levels.formula.exponent: must be a number between 0.5 and 4",
            ],
        ),
        # Regressions: these used to raise OverflowError, or a message without its path.
        ({"formula": {"base": math.inf}}, ["levels.formula.base: is too large"]),
        ({"formula": {"base": 1e308}}, ["levels.formula.base: is too large"]),
        ({"formula": {"base": 10**400}}, ["levels.formula.base: is too large"]),
        # Regression: a tiny base made level 2 (or more) need 0 XP, so a new player with no XP
        # was above level 1.
        (
            {"formula": {"base": 0.4, "exponent": 1}},
            ["levels.formula.base: is too small: level 2 would need 0 XP"],
        ),
        (
            {"formula": {"base": 0.5}},
            ["levels.formula.base: is too small: level 2 would need 0 XP"],
        ),
    ],
)
def test_level_errors_carry_paths(levels: Any, errors: list[str]) -> None:
    assert rules_errors({"xp": [GOOD], "levels": levels}) == errors


@pytest.mark.parametrize(
    "formula",
    [{"base": 1}, {"base": 0.51, "exponent": 0.5}, {"base": 50, "exponent": 4}, {"base": 1e6}],
)
def test_edge_formulas_are_accepted_with_level_one_at_zero(formula: dict[str, Any]) -> None:
    curve = parse_rules({"levels": {"formula": formula}}).levels
    assert curve.level_for(0) == 1
    assert curve.xp_for(2) is not None and curve.xp_for(2) > 0


def test_exponent_defaults_to_one_and_a_half() -> None:
    assert parse_rules({"levels": {"formula": {"base": 100}}}).levels == formula_curve(100, 1.5)
