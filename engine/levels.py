"""Level curves: the XP needed to reach each level, as a table or a power formula."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

MAX_LEVEL = 1000


@dataclass(frozen=True)
class LevelCurve:
    """Cumulative XP thresholds: ``thresholds[i]`` is the XP that reaches level ``i + 1``."""

    thresholds: tuple[int, ...]

    def level_for(self, xp: int) -> int:
        """The level a player with ``xp`` total XP has reached (level 1 at 0 XP)."""
        return max(1, bisect_right(self.thresholds, xp))

    def xp_for(self, level: int) -> int | None:
        """XP needed to reach ``level``, or None past the top of the curve."""
        if level < 1:
            return 0
        if level > len(self.thresholds):
            return None
        return self.thresholds[level - 1]


def formula_curve(base: float, exponent: float, max_level: int = MAX_LEVEL) -> LevelCurve:
    """Level L needs ``base * (L - 1) ** exponent`` XP, rounded: level 1 at 0 XP."""
    thresholds = [round(base * (level - 1) ** exponent) for level in range(1, max_level + 1)]
    return LevelCurve(tuple(thresholds))


def parse_level_curve(spec: Any) -> LevelCurve:
    """Read ``{"formula": {"base": B, "exponent": E}}`` or ``{"table": [0, 100, ...]}``.

    Raises ValueError whose lines are ``.path: message`` fragments, for the caller to prefix.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(": must be an object with a formula or a table")
    if "table" in spec:
        table = spec["table"]
        if (
            not isinstance(table, list)
            or not table
            or any(isinstance(v, bool) or not isinstance(v, int) for v in table)
        ):
            raise ValueError(".table: must be a non-empty list of integers")
        if table[0] != 0:
            raise ValueError(".table[0]: level 1 must need 0 XP")
        if any(b <= a for a, b in pairwise(table)):
            raise ValueError(".table: thresholds must strictly increase")
        return LevelCurve(tuple(table))
    formula = spec.get("formula")
    if not isinstance(formula, Mapping):
        raise ValueError(": needs a formula {base, exponent} or a table")
    base, exponent = formula.get("base"), formula.get("exponent", 1.5)
    problems = []
    if isinstance(base, bool) or not isinstance(base, int | float) or not base > 0:  # NaN too
        problems.append(".formula.base: must be a positive number")
    if (
        isinstance(exponent, bool)
        or not isinstance(exponent, int | float)
        or not 0.5 <= exponent <= 4
    ):
        problems.append(".formula.exponent: must be a number between 0.5 and 4")
    if problems or not isinstance(base, int | float) or not isinstance(exponent, int | float):
        raise ValueError("\n".join(problems))
    try:
        curve = formula_curve(float(base), float(exponent))
    except (OverflowError, ValueError):  # round() of inf or NaN (inf * 0 for level 1)
        raise ValueError(".formula.base: is too large") from None
    if curve.level_for(0) != 1:
        raise ValueError(".formula.base: is too small: level 2 would need 0 XP")
    return curve
