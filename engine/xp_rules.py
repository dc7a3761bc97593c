"""XP rules and multipliers: what earns points, how many, and the limits that stop farming.

Each part parses itself from plain data, appending ``path: message`` strings to an error list so
``questline rules check`` can print every problem at once. Matching and the arithmetic also live
here; the counters they need (caps, cooldowns, first time per object) are in engine/counters.py
and are consulted by engine/evaluate.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.events import EVENT_TYPE_PATTERN, ActivityEvent, parse_timestamp
from engine.expressions import EvaluationError, Expression, InvalidExpression, compile_expression

RULE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
DURATION_PATTERN = re.compile(r"^(\d{1,7})\s*([smhd])$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FORMULA_NAMES = frozenset({"score", "passed", "duration"})
MAX_POINTS = 1_000_000
MAX_FACTOR = 10.0

# Explanations print scores and formula results with ``:g``; formatting a float is one of the
# dearest steps of an award, and the same few values (scores to two decimals, typical
# results) recur, so the texts are kept. Bounded: cleared when it grows past the limit.
_G_TEXT: dict[float, str] = {}
_G_LIMIT = 65_536


def g_text(value: float) -> str:
    """``f"{value:g}"``, remembered (not for zero: 0.0 and -0.0 are one key but two texts)."""
    if not value:
        return f"{value:g}"
    text = _G_TEXT.get(value)
    if text is None:
        if len(_G_TEXT) >= _G_LIMIT:
            _G_TEXT.clear()
        text = _G_TEXT[value] = f"{value:g}"
    return text


@dataclass(frozen=True)
class Conditions:
    """Filters an event must pass for a rule to match (all of them)."""

    object_types: frozenset[str] | None = None
    courses: frozenset[str] | None = None
    score_at_least: float | None = None
    passed: bool | None = None
    first_time_per_object: bool = False

    def matches(self, event: ActivityEvent) -> bool:
        """``reasons(event) is not None`` without building the explanation (badges and quests
        test every event against their filters)."""
        if self.object_types is not None and event.object_type not in self.object_types:
            return False
        if self.courses is not None and event.course not in self.courses:
            return False
        if self.score_at_least is not None:
            score = event.result.score
            if score is None or score < self.score_at_least:
                return False
        return self.passed is None or event.result.passed is self.passed

    def reasons(self, event: ActivityEvent) -> list[str] | None:
        """Why the event matches (fragments for the explanation), or None when it does not."""
        out: list[str] = []
        if self.object_types is not None:
            if event.object_type not in self.object_types:
                return None
            out.append(f"object type {event.object_type}")
        if self.courses is not None:
            if event.course not in self.courses:
                return None
            out.append(f"course {event.course}")
        if self.score_at_least is not None:
            score = event.result.score
            if score is None or score < self.score_at_least:
                return None
            out.append(f"score {g_text(score)} >= {g_text(self.score_at_least)}")
        if self.passed is not None:
            if event.result.passed is not self.passed:
                return None
            out.append("passed" if self.passed else "not passed")
        return out


@dataclass(frozen=True)
class XpRule:
    """Award XP for events of type ``on`` that meet ``when``.

    ``points`` is a flat amount; with ``per_score`` it is scaled by the score (the v1 form); with
    ``formula`` the formula gives the amount. Caps are in XP; ``cooldown`` is in seconds between
    two awards of this rule for the same object.
    """

    id: str
    on: str
    points: int
    per_score: bool = False
    formula: Expression | None = None
    when: Conditions = field(default_factory=Conditions)
    cap_per_day: int | None = None
    cap_per_object: int | None = None
    cooldown: int | None = None
    # Coins paid with each award of this rule (not multiplied or capped: caps limit the XP, and
    # no XP means no coins). A rule with ``points: 0`` and coins pays coins alone when it matches.
    currency: int = 0

    @property
    def currency_only(self) -> bool:
        return self.currency > 0 and self.points == 0 and self.formula is None

    @property
    def tracks_objects(self) -> bool:
        return self.cap_per_object is not None or self.when.first_time_per_object

    def points_for(self, score: float | None) -> int:
        """The v1 arithmetic: flat points, or points x score rounded."""
        if not self.per_score:
            return self.points
        return round(self.points * (score if score is not None else 0.0))

    def amount_only(self, event: ActivityEvent) -> int:
        """``base_amount`` without the explanation text (for callers that only count)."""
        if self.formula is None:
            return self.points_for(event.result.score)
        result = event.result
        env = {
            "score": result.score if result.score is not None else 0.0,
            "passed": 1.0 if result.passed else 0.0,
            "duration": result.duration if result.duration is not None else 0.0,
        }
        try:
            value = self.formula.evaluate(env)
        except EvaluationError:
            return 0
        return max(0, min(MAX_POINTS, round(value)))

    def base_amount(self, event: ActivityEvent) -> tuple[int, str | None]:
        """The amount before multipliers and caps, and the arithmetic shown in the explanation."""
        if self.formula is not None:
            result = event.result
            env = {
                "score": result.score if result.score is not None else 0.0,
                "passed": 1.0 if result.passed else 0.0,
                "duration": result.duration if result.duration is not None else 0.0,
            }
            try:
                value = self.formula.evaluate(env)
            except EvaluationError:
                return 0, None
            amount = max(0, min(MAX_POINTS, round(value)))
            inputs = ", ".join(f"{n} {g_text(env[n])}" for n in self.formula.ordered_names)
            return amount, f"{self.formula.source} = {g_text(value)}" + (
                f" with {inputs}" if inputs else ""
            )
        amount = self.points_for(event.result.score)
        if self.per_score:
            score = event.result.score if event.result.score is not None else 0.0
            return amount, f"{self.points} x score {g_text(score)}"
        return amount, None


@dataclass(frozen=True)
class Multiplier:
    """Multiply XP by ``factor`` for events that occurred in [start, end) (optionally only for
    some rules). Event time, not processing time, so a replay gives the same answer."""

    id: str
    factor: float
    start: datetime
    end: datetime
    rules: frozenset[str] | None = None

    def applies(self, rule_id: str, occurred_at: datetime) -> bool:
        if self.rules is not None and rule_id not in self.rules:
            return False
        return self.start <= occurred_at < self.end


def parse_duration(value: Any) -> int:
    """Seconds from an integer or text such as ``90s``, ``10m``, ``2h``, ``1d``."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str):
        match = DURATION_PATTERN.fullmatch(value.strip())
        if match and int(match.group(1)) > 0:
            return int(match.group(1)) * DURATION_UNITS[match.group(2)]
    raise ValueError


def _text_set(value: Any) -> frozenset[str] | None:
    """A string or a non-empty list of strings, as a set; None when malformed."""
    if isinstance(value, str) and value:
        return frozenset({value})
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return frozenset(value)
    return None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


XP_FIELDS = {
    "id",
    "on",
    "points",
    "per_score",
    "when",
    "cap",
    "cooldown",
    "currency",
    "description",
}
WHEN_FIELDS = {"object_type", "course", "score_at_least", "passed", "first_time_per_object"}


def parse_conditions(raw: Any, path: str, errors: list[str]) -> Conditions:
    if raw is None:
        return Conditions()
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object")
        return Conditions()
    types = courses = None
    if "object_type" in raw and (types := _text_set(raw["object_type"])) is None:
        errors.append(f"{path}.object_type: must be a name or a list of names")
    if "course" in raw and (courses := _text_set(raw["course"])) is None:
        errors.append(f"{path}.course: must be a course id or a list of course ids")
    score = raw.get("score_at_least")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
    ):
        errors.append(f"{path}.score_at_least: must be a number between 0 and 1")
        score = None
    passed = raw.get("passed")
    if passed is not None and not isinstance(passed, bool):
        errors.append(f"{path}.passed: must be true or false")
        passed = None
    first = raw.get("first_time_per_object", False)
    if not isinstance(first, bool):
        errors.append(f"{path}.first_time_per_object: must be true or false")
        first = False
    errors.extend(f"{path}.{key}: unknown field" for key in sorted(set(raw) - WHEN_FIELDS))
    return Conditions(types, courses, float(score) if score is not None else None, passed, first)


def parse_xp_rule(raw: Any, path: str, seen: set[str], errors: list[str]) -> XpRule | None:
    """One entry of ``xp``; None (with errors appended) when it is invalid."""
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object")
        return None
    before = len(errors)
    rule_id, on, points = raw.get("id"), raw.get("on"), raw.get("points")
    if not isinstance(rule_id, str) or not RULE_ID_PATTERN.fullmatch(rule_id):
        errors.append(f"{path}.id: must be 1-100 lowercase letters, digits or . _ -")
    elif rule_id in seen:
        errors.append(f"{path}.id: duplicate rule id {rule_id!r}")
    if not isinstance(on, str) or not EVENT_TYPE_PATTERN.fullmatch(on):
        errors.append(f"{path}.on: must be an event type such as lesson.completed")
    formula: Expression | None = None
    if isinstance(points, str):
        try:
            formula = compile_expression(points, FORMULA_NAMES)
        except InvalidExpression as exc:
            errors.append(f"{path}.points: {exc}")
    elif isinstance(points, bool) or not isinstance(points, int) or points < 0:
        errors.append(f"{path}.points: must be a non-negative integer")
    elif points > MAX_POINTS:
        errors.append(f"{path}.points: must be at most {MAX_POINTS}")
    per_score = raw.get("per_score", False)
    if not isinstance(per_score, bool):
        errors.append(f"{path}.per_score: must be true or false")
    elif per_score and formula is not None:
        errors.append(f"{path}.per_score: cannot be combined with a formula; use score in it")
    when = parse_conditions(raw.get("when"), f"{path}.when", errors)
    cap_day = cap_object = None
    cap = raw.get("cap")
    if cap is not None:
        if not isinstance(cap, Mapping):
            errors.append(f"{path}.cap: must be an object with per_day and/or per_object")
        else:
            for key in ("per_day", "per_object"):
                if key in cap and not _positive_int(cap[key]):
                    errors.append(f"{path}.cap.{key}: must be a positive integer (XP)")
            errors.extend(
                f"{path}.cap.{key}: unknown field"
                for key in sorted(set(cap) - {"per_day", "per_object"})
            )
            cap_day = cap.get("per_day") if _positive_int(cap.get("per_day")) else None
            cap_object = cap.get("per_object") if _positive_int(cap.get("per_object")) else None
    cooldown = None
    if raw.get("cooldown") is not None:
        try:
            cooldown = parse_duration(raw["cooldown"])
        except ValueError:
            errors.append(f"{path}.cooldown: must be seconds or a duration such as 30s, 10m, 1d")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        errors.append(f"{path}.description: must be text")
    currency = raw.get("currency", 0)
    if isinstance(currency, bool) or not isinstance(currency, int) or not 0 <= currency <= 10_000:
        errors.append(f"{path}.currency: must be an integer from 0 to 10000 (coins per award)")
    errors.extend(f"{path}.{key}: unknown field" for key in sorted(set(raw) - XP_FIELDS))
    if len(errors) > before:
        return None
    seen.add(str(rule_id))
    return XpRule(
        id=str(rule_id),
        on=str(on),
        points=0 if formula is not None or not isinstance(points, int) else points,
        per_score=bool(per_score),
        formula=formula,
        when=when,
        cap_per_day=cap_day,
        cap_per_object=cap_object,
        cooldown=cooldown,
        currency=int(currency),
    )


MULTIPLIER_FIELDS = {"id", "factor", "from", "until", "rules", "description"}


def parse_multiplier(raw: Any, path: str, seen: set[str], errors: list[str]) -> Multiplier | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object")
        return None
    before = len(errors)
    mid = raw.get("id")
    if not isinstance(mid, str) or not RULE_ID_PATTERN.fullmatch(mid):
        errors.append(f"{path}.id: must be 1-100 lowercase letters, digits or . _ -")
    elif mid in seen:
        errors.append(f"{path}.id: duplicate multiplier id {mid!r}")
    factor = raw.get("factor")
    if (
        isinstance(factor, bool)
        or not isinstance(factor, int | float)
        or not 0 < factor <= MAX_FACTOR
    ):
        errors.append(f"{path}.factor: must be a number above 0 and at most {MAX_FACTOR:g}")
    bounds: list[datetime] = []
    for key in ("from", "until"):
        try:
            bounds.append(parse_timestamp(raw.get(key)))
        except ValueError as exc:
            errors.append(f"{path}.{key}: {exc}")
    if len(bounds) == 2 and bounds[0] >= bounds[1]:
        errors.append(f"{path}.until: must be after from")
    rules = None
    if "rules" in raw and (rules := _text_set(raw["rules"])) is None:
        errors.append(f"{path}.rules: must be a rule id or a list of rule ids")
    errors.extend(f"{path}.{key}: unknown field" for key in sorted(set(raw) - MULTIPLIER_FIELDS))
    if len(errors) > before:
        return None
    seen.add(str(mid))
    assert isinstance(factor, int | float)
    return Multiplier(str(mid), float(factor), bounds[0], bounds[1], rules)
