"""Rule documents (format v2, backward compatible with v1) and the rule book of a tenant.

A rule document is plain data (JSON or YAML shaped); ``parse_rules`` validates it and reports
every problem with its path, e.g. ``xp[2].points: must be a non-negative integer``. The format is
documented in docs/rules.md.

A tenant has one active tenant-wide rule set and may have one per course. A course rule set
applies to events of that course ON TOP of the tenant's rules: its rules are added, and a course
rule with the same id as a tenant rule replaces it for that course (``points: 0`` switches a
tenant rule off there). Levels are tenant-wide only, because XP totals are tenant-wide. We chose
"on top of" rather than "instead of" so a tenant's defaults (logins, course completion) keep
working in every course without each instructor copying them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from engine.badges import Badge, parse_badge
from engine.compiled import CompiledRules
from engine.levels import LevelCurve, parse_level_curve
from engine.quests import Quest, parse_quest
from engine.shop import ShopItem, parse_shop_item
from engine.streaks import StreakRules, parse_streak_rules
from engine.xp_rules import (
    RULE_ID_PATTERN,
    Conditions,
    Multiplier,
    XpRule,
    parse_multiplier,
    parse_xp_rule,
)

__all__ = [
    "DEFAULT_RULES",
    "RULE_ID_PATTERN",
    "Badge",
    "Conditions",
    "InvalidRules",
    "Multiplier",
    "Quest",
    "RuleBook",
    "RuleSet",
    "ShopItem",
    "XpRule",
    "parse_rules",
]

Scope = Literal["tenant", "course"]
SECTIONS = {
    "version",
    "description",
    "xp",
    "levels",
    "multipliers",
    "badges",
    "streaks",
    "quests",
    "shop",
    "goals",
}


class InvalidRules(ValueError):
    """A rule document has errors; ``errors`` is a list of ``path: message`` strings."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class RuleSet:
    """A validated rule document: XP rules, multipliers and the level curve."""

    xp: tuple[XpRule, ...]
    levels: LevelCurve
    multipliers: tuple[Multiplier, ...] = ()
    badges: tuple[Badge, ...] = ()
    streaks: StreakRules = field(default_factory=StreakRules)
    quests: tuple[Quest, ...] = ()
    shop: tuple[ShopItem, ...] = ()
    # ``goals: {daily_xp: N}``: the XP a learner aims for each local day (the dashboard's daily
    # goal); None = the tenant default from settings. Tenant-wide, like levels.
    daily_xp_goal: int | None = None
    _by_type: dict[str, tuple[XpRule, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, list[XpRule]] = {}
        for rule in self.xp:
            index.setdefault(rule.on, []).append(rule)
        self._by_type.update({k: tuple(v) for k, v in index.items()})

    @cached_property
    def compiled(self) -> CompiledRules:
        """The rule set prepared for evaluation, built on first use and kept with the set
        (rule sets are immutable; the worker and replays reuse one set for many events)."""
        return CompiledRules(self)

    def rules_for(self, event_type: str) -> tuple[XpRule, ...]:
        """The rules for ``event_type``, in document order."""
        return self._by_type.get(event_type, ())

    def multipliers_for(self, rule_id: str, occurred_at: Any) -> list[Multiplier]:
        return [m for m in self.multipliers if m.applies(rule_id, occurred_at)]


@dataclass(frozen=True)
class RuleBook:
    """A tenant's active rules: the tenant-wide set plus the course sets, merged per course."""

    tenant: RuleSet
    courses: Mapping[str, RuleSet] = field(default_factory=dict)
    _merged: dict[str, RuleSet] = field(default_factory=dict, compare=False, repr=False)

    @property
    def levels(self) -> LevelCurve:
        return self.tenant.levels

    def for_course(self, course: str | None) -> RuleSet:
        """The rules for an event of ``course`` (the tenant's alone when it has no course set)."""
        if course is None or course not in self.courses:
            return self.tenant
        merged = self._merged.get(course)
        if merged is None:
            merged = merge(self.tenant, self.courses[course], course)
            self._merged[course] = merged
        return merged

    def all_quests(self) -> list[Quest]:
        """Every quest a player can see: the tenant's, then each course's (bound to it)."""
        out = list(self.tenant.quests)
        for course in sorted(self.courses):
            out += [q for q in self.for_course(course).quests if q.course == course]
        return out

    def badge(self, badge_id: str) -> Badge | None:
        """A badge by id, in the tenant set or any course set (for quest rewards)."""
        for ruleset in (self.tenant, *self.courses.values()):
            for badge in ruleset.badges:
                if badge.id == badge_id:
                    return badge
        return None


def merge(tenant: RuleSet, course: RuleSet, course_id: str | None = None) -> RuleSet:
    """Tenant rules with the course's on top: same id replaces, new ids are added after. The
    course's quests count only events of that course."""
    overridden = {rule.id for rule in course.xp}
    replaced = {m.id for m in course.multipliers}
    rebadged = {b.id for b in course.badges}
    return RuleSet(
        xp=tuple(r for r in tenant.xp if r.id not in overridden) + course.xp,
        levels=tenant.levels,
        multipliers=tuple(m for m in tenant.multipliers if m.id not in replaced)
        + course.multipliers,
        badges=tuple(b for b in tenant.badges if b.id not in rebadged) + course.badges,
        streaks=tenant.streaks,
        quests=tuple(q for q in tenant.quests if q.id not in {c.id for c in course.quests})
        + tuple(
            replace(q, course=course_id) if q.course is None and course_id else q
            for q in course.quests
        ),
        shop=tenant.shop,
        daily_xp_goal=tenant.daily_xp_goal,
    )


DEFAULT_RULES: dict[str, Any] = {
    "xp": [
        {"id": "session-started", "on": "session.started", "points": 1},
        {"id": "lesson-completed", "on": "lesson.completed", "points": 10},
        {"id": "quiz-submitted", "on": "quiz.submitted", "points": 20, "per_score": True},
        {"id": "assignment-graded", "on": "assignment.graded", "points": 30, "per_score": True},
        {"id": "course-completed", "on": "course.completed", "points": 100},
        {"id": "deal-won", "on": "deal.won", "points": 50},
    ],
    "levels": {"formula": {"base": 100, "exponent": 1.5}},
}


def _list(document: Mapping[str, Any], key: str, what: str, errors: list[str]) -> list[Any]:
    raw = document.get(key, [])
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(f"{key}: must be a list of {what}")
        return []
    return raw


def _text_keys(node: Any, path: str, errors: list[str]) -> None:
    """Report every mapping key that is not text (YAML allows ``1:``, ``null:`` or ``[a]:``)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if not isinstance(key, str):
                errors.append(f"{path or '$'}: keys must be text, not {key!r}")
                continue
            _text_keys(value, f"{path}.{key}" if path else key, errors)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _text_keys(item, f"{path}[{i}]", errors)


def parse_rules(document: Any, *, scope: Scope = "tenant") -> RuleSet:
    """Validate a rule document; raise ``InvalidRules`` with every error and its path.

    ``scope="course"`` checks a course rule set, which may not define levels.
    """
    errors: list[str] = []
    if not isinstance(document, Mapping):
        raise InvalidRules(["$: a rule set must be an object"])
    _text_keys(document, "", errors)
    if errors:  # a YAML key such as `1:` or `true:` would break every later check
        raise InvalidRules(errors)
    errors.extend(f"{key}: unknown section" for key in sorted(set(document) - SECTIONS))
    version = document.get("version", 1)
    if isinstance(version, bool) or version not in (1, 2):
        errors.append("version: must be 1 or 2")
    if "description" in document and not isinstance(document["description"], str):
        errors.append("description: must be text")

    seen: set[str] = set()
    xp_rules = [
        rule
        for i, raw in enumerate(_list(document, "xp", "rules", errors))
        if (rule := parse_xp_rule(raw, f"xp[{i}]", seen, errors)) is not None
    ]
    seen_multipliers: set[str] = set()
    multipliers = [
        m
        for i, raw in enumerate(_list(document, "multipliers", "multipliers", errors))
        if (m := parse_multiplier(raw, f"multipliers[{i}]", seen_multipliers, errors)) is not None
    ]
    seen_badges: set[str] = set()
    badges = [
        b
        for i, raw in enumerate(_list(document, "badges", "badges", errors))
        if (b := parse_badge(raw, f"badges[{i}]", seen_badges, errors)) is not None
    ]
    seen_quests: set[str] = set()
    quests = [
        q
        for i, raw in enumerate(_list(document, "quests", "quests", errors))
        if (q := parse_quest(raw, f"quests[{i}]", seen_quests, errors)) is not None
    ]
    shop: list[ShopItem] = []
    if scope == "course" and "shop" in document:
        errors.append("shop: only the tenant rule set defines the shop")
    else:
        seen_items: set[str] = set()
        shop = [
            item
            for i, raw in enumerate(_list(document, "shop", "items", errors))
            if (item := parse_shop_item(raw, f"shop[{i}]", seen_items, errors)) is not None
        ]
    if scope == "tenant":
        for i, q in enumerate(quests):
            if q.reward.badge is not None and q.reward.badge not in seen_badges:
                errors.append(f"quests[{i}].reward.badge: unknown badge id {q.reward.badge!r}")
        # A course set may name the tenant's rules, which it cannot see here.
        for i, m in enumerate(multipliers):
            for rule_id in sorted((m.rules or frozenset()) - seen):
                errors.append(f"multipliers[{i}].rules: unknown rule id {rule_id!r}")

    daily_xp_goal = _goals(document, scope, errors)
    streaks = StreakRules()
    if scope == "course" and "streaks" in document:
        errors.append("streaks: only the tenant rule set defines streaks")
    else:
        streak_errors: list[str] = []
        streaks = parse_streak_rules(document.get("streaks"), streak_errors)
        errors.extend(streak_errors)
    curve = None
    if scope == "course" and "levels" in document:
        errors.append("levels: only the tenant rule set defines levels")
    else:
        try:
            curve = parse_level_curve(document.get("levels", DEFAULT_RULES["levels"]))
        except ValueError as exc:
            errors.extend(f"levels{msg}" for msg in str(exc).split("\n"))
    if errors:
        raise InvalidRules(errors)
    if curve is None:
        curve = parse_level_curve(DEFAULT_RULES["levels"])
    return RuleSet(
        xp=tuple(xp_rules),
        levels=curve,
        multipliers=tuple(multipliers),
        badges=tuple(badges),
        streaks=streaks,
        quests=tuple(quests),
        shop=tuple(shop),
        daily_xp_goal=daily_xp_goal,
    )


MAX_DAILY_XP_GOAL = 1_000_000


def _goals(document: Mapping[str, Any], scope: Scope, errors: list[str]) -> int | None:
    """The optional ``goals`` section: ``{daily_xp: N}`` (tenant rule sets only)."""
    goals = document.get("goals")
    if goals is None:
        return None
    if scope == "course":
        errors.append("goals: only the tenant rule set defines goals")
        return None
    if not isinstance(goals, Mapping):
        errors.append("goals: must be an object such as {daily_xp: 50}")
        return None
    errors.extend(f"goals.{k}: unknown field" for k in sorted(set(goals) - {"daily_xp"}))
    value = goals.get("daily_xp")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAILY_XP_GOAL:
        errors.append(f"goals.daily_xp: must be an integer from 1 to {MAX_DAILY_XP_GOAL}")
        return None
    return value
