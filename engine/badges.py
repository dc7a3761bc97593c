"""Badges: criteria over a player's history, one-time or tiered, per course or tenant-wide.

A criterion is a tree: leaves measure something (a count of matching events, a sum of their
scores or durations, distinct objects, a best score, the streak, the level, total XP), inside an
optional time window; ``all_of`` / ``any_of`` combine them. Leaves that look at events keep a
small tally in the player's rule state (plain JSON), updated by each matching event, so checking
a badge never needs the history itself. Evaluation is by event time, so a replay agrees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from engine.events import EVENT_TYPE_PATTERN, ActivityEvent
from engine.xp_rules import RULE_ID_PATTERN, Conditions, parse_conditions, parse_duration

Kind = Literal["count", "sum_of", "distinct_objects", "best_score", "streak", "level", "xp"]
EVENT_KINDS = ("count", "sum_of", "distinct_objects", "best_score")
LIVE_KINDS = ("streak", "level", "xp")
SUM_FIELDS = ("score", "duration")
MAX_DISTINCT = 10_000
TIER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,49}$")


@dataclass(frozen=True)
class EventFilter:
    """Which events a leaf counts: types (``on``, any when absent) and conditions."""

    types: frozenset[str] | None = None
    when: Conditions = field(default_factory=Conditions)

    def matches(self, event: ActivityEvent) -> bool:
        if self.types is not None and event.type not in self.types:
            return False
        return self.when.matches(event)


@dataclass(frozen=True)
class Leaf:
    key: str  # the tally's name: unique per badge, tier and position in the tree
    kind: Kind
    threshold: float
    of: EventFilter = field(default_factory=EventFilter)
    sum_field: str = "score"
    within: int | None = None  # seconds


@dataclass(frozen=True)
class Group:
    mode: Literal["all_of", "any_of"]
    parts: tuple[Criterion, ...]


Criterion = Leaf | Group


@dataclass(frozen=True)
class Tier:
    name: str
    criteria: Criterion


@dataclass(frozen=True)
class Badge:
    id: str
    name: str
    scope: Literal["tenant", "course"]
    tiers: tuple[Tier, ...]
    expires_after: int | None = None  # seconds
    description: str = ""

    def leaves(self) -> list[Leaf]:
        return list(self._leaves)

    @cached_property
    def _leaves(self) -> tuple[Leaf, ...]:
        """Computed once per badge: the engine walks them for every event."""
        out: list[Leaf] = []
        for tier in self.tiers:
            _collect(tier.criteria, out)
        return tuple(out)


def _collect(node: Criterion, out: list[Leaf]) -> None:
    if isinstance(node, Leaf):
        out.append(node)
    else:
        for part in node.parts:
            _collect(part, out)


# --- tallies: the state a leaf keeps, as JSON-safe dicts -------------------------------------


def update_tally(
    tally: Mapping[str, Any] | None, leaf: Leaf, event: ActivityEvent, at: int | None = None
) -> dict[str, Any]:
    """The tally after a matching ``event``. Windowed tallies keep (time, value, object) entries
    inside the window; the others keep running totals. ``at`` is the event's epoch seconds when
    the caller has them already. A new dict is returned: tallies may be shared with a frozen
    state, so they are never changed in place."""
    if at is None:
        at = int(event.occurred_at.timestamp())
    value = tally_value(leaf, event)
    obj = event.object_id
    if leaf.within is not None:
        entries = [e for e in (tally or {}).get("w", []) if at - e[0] < leaf.within]
        entries.append([at, value, obj])
        return {"w": entries[-MAX_DISTINCT:]}
    old = tally or {}
    if leaf.kind == "count":
        return {"n": int(old.get("n", 0)) + 1}
    if leaf.kind == "sum_of":
        return {"s": float(old.get("s", 0.0)) + value}
    if leaf.kind == "best_score":
        return {"m": max(float(old.get("m", 0.0)), value)}
    objects = list(old.get("o", []))
    if obj is not None and obj not in objects and len(objects) < MAX_DISTINCT:
        objects.append(obj)
    return {"o": objects}


def tally_value(leaf: Leaf, event: ActivityEvent) -> float:
    """What one matching event adds to a leaf's tally (its score, duration, or 1)."""
    if leaf.kind == "best_score" or (leaf.kind == "sum_of" and leaf.sum_field == "score"):
        return event.result.score or 0.0
    if leaf.kind == "sum_of":
        return event.result.duration or 0.0
    return 1.0


def measure(tally: Mapping[str, Any] | None, leaf: Leaf, at: int) -> float:
    """The leaf's metric from its tally, as of ``at`` (epoch seconds) for windows."""
    if not tally:
        return 0.0
    if leaf.within is not None:
        entries = [e for e in tally.get("w", []) if at - e[0] < leaf.within]
        if leaf.kind == "count":
            return float(len(entries))
        if leaf.kind == "sum_of":
            return float(sum(e[1] for e in entries))
        if leaf.kind == "best_score":
            return float(max((e[1] for e in entries), default=0.0))
        return float(len({e[2] for e in entries if e[2] is not None}))
    if leaf.kind == "count":
        return float(tally.get("n", 0))
    if leaf.kind == "sum_of":
        return float(tally.get("s", 0.0))
    if leaf.kind == "best_score":
        return float(tally.get("m", 0.0))
    return float(len(tally.get("o", [])))


@dataclass(frozen=True)
class Facts:
    """What a check may look at: tallies (by leaf key) and the player's live numbers."""

    tallies: Mapping[str, Any]
    streak: int
    level: int
    xp: int
    at: int


def satisfied(node: Criterion, facts: Facts, reasons: list[str]) -> bool:
    """Whether ``node`` holds; appends a human reason for each leaf that does."""
    if isinstance(node, Group):
        found: list[str] = []
        results = [satisfied(part, facts, found) for part in node.parts]
        ok = all(results) if node.mode == "all_of" else any(results)
        if ok:
            reasons.extend(found)
        return ok
    if node.kind in LIVE_KINDS:
        value = float({"streak": facts.streak, "level": facts.level, "xp": facts.xp}[node.kind])
    else:
        value = measure(facts.tallies.get(node.key), node, facts.at)
    if value < node.threshold:
        return False
    label = {
        "count": "events",
        "sum_of": f"total {node.sum_field}",
        "distinct_objects": "distinct objects",
        "best_score": "best score",
        "streak": "day streak",
        "level": "level",
        "xp": "XP",
    }[node.kind]
    window = f" within {_duration_text(node.within)}" if node.within else ""
    reasons.append(f"{label} {value:g} >= {node.threshold:g}{window}")
    return True


def _duration_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def expires_at(badge: Badge, awarded: datetime) -> int | None:
    if badge.expires_after is None:
        return None
    return int(awarded.timestamp()) + badge.expires_after


# --- parsing ---------------------------------------------------------------------------------

BADGE_FIELDS = {"id", "name", "description", "scope", "criteria", "tiers", "expires_after"}
LEAF_EXTRA = {"of", "within", "at_least"}


def _parse_filter(raw: Any, path: str, errors: list[str]) -> EventFilter:
    if raw is None:
        return EventFilter()
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object with on and/or when")
        return EventFilter()
    types = None
    if "on" in raw:
        on = raw["on"]
        if isinstance(on, str) and EVENT_TYPE_PATTERN.fullmatch(on):
            types = frozenset({on})
        elif (
            isinstance(on, list)
            and on
            and all(isinstance(t, str) and EVENT_TYPE_PATTERN.fullmatch(t) for t in on)
        ):
            types = frozenset(on)
        else:
            errors.append(f"{path}.on: must be an event type or a list of them")
    when = parse_conditions(raw.get("when"), f"{path}.when", errors)
    if when.first_time_per_object:
        errors.append(f"{path}.when.first_time_per_object: use distinct_objects in a badge")
    errors.extend(f"{path}.{k}: unknown field" for k in sorted(set(raw) - {"on", "when"}))
    return EventFilter(types, when)


def _positive_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


def parse_criterion(raw: Any, path: str, key: str, errors: list[str]) -> Criterion | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object")
        return None
    groups = [g for g in ("all_of", "any_of") if g in raw]
    kinds = [k for k in (*EVENT_KINDS, *LIVE_KINDS) if k in raw]
    if len(groups) + len(kinds) != 1:
        errors.append(
            f"{path}: needs exactly one of all_of, any_of, count, sum_of, distinct_objects, "
            "best_score, streak, level, xp"
        )
        return None
    if groups:
        mode = groups[0]
        items = raw[mode]
        errors.extend(f"{path}.{k}: unknown field" for k in sorted(set(raw) - {mode}))
        if not isinstance(items, list) or not items:
            errors.append(f"{path}.{mode}: must be a non-empty list of criteria")
            return None
        parts = [
            parse_criterion(item, f"{path}.{mode}[{i}]", f"{key}.{i}", errors)
            for i, item in enumerate(items)
        ]
        if any(p is None for p in parts):
            return None
        return Group(mode, tuple(p for p in parts if p is not None))  # type: ignore[arg-type]
    kind: Kind = kinds[0]  # type: ignore[assignment]
    before = len(errors)
    threshold: Any = raw[kind]
    sum_field = "score"
    if kind == "sum_of":
        sum_field = raw[kind]
        threshold = raw.get("at_least")
        if sum_field not in SUM_FIELDS:
            errors.append(f"{path}.sum_of: must be one of {', '.join(SUM_FIELDS)}")
        if not _positive_number(threshold):
            errors.append(f"{path}.at_least: must be a positive number")
    elif kind == "best_score":
        if not _positive_number(threshold) or threshold > 1:
            errors.append(f"{path}.best_score: must be a number above 0 and at most 1")
    elif isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        errors.append(f"{path}.{kind}: must be a positive integer")
    allowed = {kind} | (LEAF_EXTRA if kind in EVENT_KINDS else set())
    if kind != "sum_of":
        allowed.discard("at_least")
    errors.extend(f"{path}.{k}: unknown field" for k in sorted(set(raw) - allowed))
    of = _parse_filter(raw.get("of"), f"{path}.of", errors) if kind in EVENT_KINDS else None
    within = None
    if raw.get("within") is not None and kind in EVENT_KINDS:
        try:
            within = parse_duration(raw["within"])
        except ValueError:
            errors.append(f"{path}.within: must be seconds or a duration such as 7d")
    if len(errors) > before:
        return None
    return Leaf(key, kind, float(threshold), of or EventFilter(), str(sum_field), within)


def parse_badge(raw: Any, path: str, seen: set[str], errors: list[str]) -> Badge | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object")
        return None
    before = len(errors)
    badge_id = raw.get("id")
    if not isinstance(badge_id, str) or not RULE_ID_PATTERN.fullmatch(badge_id):
        errors.append(f"{path}.id: must be 1-100 lowercase letters, digits or . _ -")
    elif badge_id in seen:
        errors.append(f"{path}.id: duplicate badge id {badge_id!r}")
    name = raw.get("name", badge_id)
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        errors.append(f"{path}.name: must be text of 1-200 characters")
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.append(f"{path}.description: must be text")
    scope = raw.get("scope", "tenant")
    if scope not in ("tenant", "course"):
        errors.append(f"{path}.scope: must be tenant or course")
    expires = None
    if raw.get("expires_after") is not None:
        try:
            expires = parse_duration(raw["expires_after"])
        except ValueError:
            errors.append(f"{path}.expires_after: must be seconds or a duration such as 365d")
    tiers: list[Tier] = []
    if ("criteria" in raw) == ("tiers" in raw):
        errors.append(f"{path}: needs criteria (one-time) or tiers (bronze/silver/gold), not both")
    elif "criteria" in raw:
        node = parse_criterion(raw["criteria"], f"{path}.criteria", f"{badge_id}#0", errors)
        if node is not None:
            tiers.append(Tier(str(name), node))
    else:
        raw_tiers = raw["tiers"]
        if not isinstance(raw_tiers, list) or not raw_tiers:
            errors.append(f"{path}.tiers: must be a non-empty list of {{name, criteria}}")
            raw_tiers = []
        for i, tier in enumerate(raw_tiers):
            tpath = f"{path}.tiers[{i}]"
            if not isinstance(tier, Mapping):
                errors.append(f"{tpath}: must be an object with name and criteria")
                continue
            tname = tier.get("name")
            if not isinstance(tname, str) or not TIER_NAME.fullmatch(tname):
                errors.append(f"{tpath}.name: must be 1-50 letters, digits, spaces or . _ -")
            errors.extend(
                f"{tpath}.{k}: unknown field" for k in sorted(set(tier) - {"name", "criteria"})
            )
            node = parse_criterion(
                tier.get("criteria"), f"{tpath}.criteria", f"{badge_id}#{i}", errors
            )
            if node is not None and isinstance(tname, str):
                tiers.append(Tier(tname, node))
    errors.extend(f"{path}.{k}: unknown field" for k in sorted(set(raw) - BADGE_FIELDS))
    if len(errors) > before:
        return None
    seen.add(str(badge_id))
    return Badge(
        str(badge_id),
        str(name),
        scope,
        tuple(tiers),
        expires,
        str(description),
    )
