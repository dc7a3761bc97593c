"""Level curves: formula thresholds, tables, and lookups at and around each threshold."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.levels import MAX_LEVEL, LevelCurve, formula_curve, parse_level_curve
from engine.rules import DEFAULT_RULES

DEFAULT = parse_level_curve(DEFAULT_RULES["levels"])


# --- the default formula: 100 * (L - 1) ** 1.5 ---------------------------------------------------


@pytest.mark.parametrize(
    ("level", "xp"),
    [(1, 0), (2, 100), (3, 283), (4, 520), (5, 800), (6, 1118), (10, 2700), (101, 100_000)],
)
def test_default_formula_thresholds(level: int, xp: int) -> None:
    assert DEFAULT.xp_for(level) == xp


def test_default_formula_matches_definition_for_every_level() -> None:
    assert len(DEFAULT.thresholds) == MAX_LEVEL
    for level in range(1, MAX_LEVEL + 1):
        assert DEFAULT.xp_for(level) == round(100 * (level - 1) ** 1.5)


def test_default_thresholds_strictly_increase() -> None:
    assert all(b > a for a, b in pairwise(DEFAULT.thresholds))


@pytest.mark.parametrize(
    ("xp", "level"),
    [
        (0, 1),
        (1, 1),
        (99, 1),
        (100, 2),
        (101, 2),
        (282, 2),
        (283, 3),
        (519, 3),
        (520, 4),
        (799, 4),
        (800, 5),
    ],
)
def test_level_for_at_and_around_thresholds(xp: int, level: int) -> None:
    assert DEFAULT.level_for(xp) == level


def test_every_threshold_is_exactly_where_the_level_starts() -> None:
    for level in range(2, MAX_LEVEL + 1):
        xp = DEFAULT.xp_for(level)
        assert xp is not None
        assert DEFAULT.level_for(xp) == level
        assert DEFAULT.level_for(xp - 1) == level - 1


def test_negative_xp_is_level_one() -> None:
    assert DEFAULT.level_for(-1) == 1
    assert DEFAULT.level_for(-(10**9)) == 1


def test_top_of_the_curve() -> None:
    top = DEFAULT.xp_for(MAX_LEVEL)
    assert top == round(100 * 999**1.5)
    assert DEFAULT.level_for(top) == MAX_LEVEL
    assert DEFAULT.level_for(10**15) == MAX_LEVEL  # capped, never past the top


@pytest.mark.parametrize("level", [MAX_LEVEL + 1, MAX_LEVEL + 50, 10**6])
def test_xp_for_past_the_top_is_none(level: int) -> None:
    assert DEFAULT.xp_for(level) is None


@pytest.mark.parametrize("level", [0, -1, -100])
def test_xp_for_below_level_one_is_zero(level: int) -> None:
    assert DEFAULT.xp_for(level) == 0


def test_formula_curve_with_other_parameters() -> None:
    linear = formula_curve(50, 1, max_level=5)
    assert linear.thresholds == (0, 50, 100, 150, 200)
    assert linear.xp_for(6) is None
    assert linear.level_for(99) == 2
    assert linear.level_for(149) == 3
    assert linear.level_for(150) == 4
    assert linear.level_for(10**6) == 5


# --- tables -------------------------------------------------------------------------------------

TABLE = parse_level_curve({"table": [0, 50, 150, 300]})


def test_table_curve_keeps_its_thresholds() -> None:
    assert TABLE.thresholds == (0, 50, 150, 300)
    assert LevelCurve((0, 50, 150, 300)) == TABLE


@pytest.mark.parametrize(
    ("xp", "level"),
    [(0, 1), (49, 1), (50, 2), (149, 2), (150, 3), (299, 3), (300, 4), (10**9, 4)],
)
def test_table_level_for(xp: int, level: int) -> None:
    assert TABLE.level_for(xp) == level


def test_table_xp_for() -> None:
    assert [TABLE.xp_for(level) for level in range(0, 6)] == [0, 0, 50, 150, 300, None]


def test_single_level_table() -> None:
    flat = parse_level_curve({"table": [0]})
    assert flat.level_for(0) == 1
    assert flat.level_for(10**6) == 1
    assert flat.xp_for(2) is None


def test_parse_level_curve_raises_path_fragments() -> None:
    with pytest.raises(ValueError, match=r"^\.table: thresholds must strictly increase$"):
        parse_level_curve({"table": [0, 10, 10]})
    with pytest.raises(ValueError) as info:
        parse_level_curve({"formula": {"base": 0, "exponent": 0}})
    assert str(info.value).split("\n") == [
        ".formula.base: must be a positive number",
        ".formula.exponent: must be a number between 0.5 and 4",
    ]


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=-1_000, max_value=4_000_000))
def test_level_for_brackets_xp(xp: int) -> None:
    level = DEFAULT.level_for(xp)
    assert 1 <= level <= MAX_LEVEL
    low = DEFAULT.xp_for(level)
    assert low is not None and (low <= xp or level == 1)
    high = DEFAULT.xp_for(level + 1)
    assert high is None or xp < high


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=30, unique=True))
def test_any_valid_table_gives_monotone_levels(steps: list[int]) -> None:
    table = [0, *sorted(steps)]
    curve = parse_level_curve({"table": table})
    levels = [curve.level_for(xp) for xp in range(0, table[-1] + 2, 7)]
    assert levels == sorted(levels)
    assert curve.level_for(0) == 1
    assert curve.level_for(table[-1]) == len(table)


@settings(max_examples=60, deadline=None)
@given(
    base=st.floats(min_value=0.01, max_value=1e9),
    exponent=st.floats(min_value=0.5, max_value=4),
)
def test_any_accepted_formula_starts_at_level_one(base: float, exponent: float) -> None:
    try:
        curve = parse_level_curve({"formula": {"base": base, "exponent": exponent}})
    except ValueError as exc:
        assert str(exc).startswith(".formula.base: is too small") and round(base) == 0
        return
    assert curve.thresholds[0] == 0
    assert curve.level_for(0) == 1
    assert all(b >= a for a, b in pairwise(curve.thresholds))
