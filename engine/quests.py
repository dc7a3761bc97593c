"""Quests and challenges: objectives to meet within a day, an ISO week or a dated window.

A quest's progress is per period: the local day (``2026-11-23``) or ISO week (``2026-W48``) of
the event in the player's zone, or ``dated`` for a quest with fixed ``from``/``until`` times.
Progress is plain JSON in the player's rule state (``RuleCounters.quests``), so the engine stays
pure and a replay gives the same progress. When every objective is met the engine emits one
``QuestCompleted``; the player then claims the reward once (questline/quests.py), and the
database's unique key on (player, quest, period) makes a second claim impossible.

Only the two newest periods of each quest are kept: a completed quest can be claimed until the
end of the period after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from engine.badges import EventFilter, _parse_filter
from engine.decisions import QuestCompleted
from engine.events import ActivityEvent, parse_timestamp
from engine.xp_rules import RULE_ID_PATTERN

Period = Literal["daily", "weekly", "dated"]
ObjectiveKind = Literal["count", "sum_of", "xp"]
KEEP_PERIODS = 2
QUEST_FIELDS = {
    "id",
    "name",
    "description",
    "period",
    "from",
    "until",
    "course",
    "objectives",
    "reward",
}
MAX_REWARD = 1_000_000


@dataclass(frozen=True)
class Objective:
    """``count`` matching events, a ``sum_of`` their score or duration, or ``xp`` earned in the
    period (by events the quest sees), reaching ``target``."""

    kind: ObjectiveKind
    target: float
    of: EventFilter = field(default_factory=EventFilter)
    sum_field: str = "score"

    def describe(self) -> str:
        what = ", ".join(sorted(self.of.types)) if self.of.types else "events"
        if self.kind == "count":
            return f"{self.target:g} x {what}"
        if self.kind == "sum_of":
            return f"total {self.sum_field} {self.target:g} in {what}"
        return f"{self.target:g} XP"


@dataclass(frozen=True)
class Reward:
    xp: int = 0
    currency: int = 0
    badge: str | None = None  # a badge id of the same rule set


@dataclass(frozen=True)
class Quest:
    id: str
    name: str
    period: Period
    objectives: tuple[Objective, ...]
    reward: Reward
    starts: datetime | None = None  # dated quests only
    ends: datetime | None = None  # exclusive
    course: str | None = None  # only events of this course count (course rule sets set it)
    description: str = ""

    def period_of(self, moment: datetime, day: date) -> str | None:
        """The period ``moment`` (local ``day``) counts in; None outside a dated window."""
        if self.period == "daily":
            return day.isoformat()
        if self.period == "weekly":
            year, week, _ = day.isocalendar()
            return f"{year}-W{week:02d}"
        assert self.starts is not None and self.ends is not None
        return "dated" if self.starts <= moment < self.ends else None


def quest_key(quest_id: str, period: str) -> str:
    return f"{quest_id}|{period}"


def advance(
    quests: tuple[Quest, ...],
    progress: Mapping[str, Mapping[str, Any]],
    event: ActivityEvent,
    day: date,
    xp_gained: int,
) -> tuple[dict[str, Mapping[str, Any]], list[QuestCompleted]]:
    """Progress after ``event`` (which earned ``xp_gained`` XP) and the quests it completed."""
    out = dict(progress)
    return out, advance_into(quests, out, event, day, xp_gained)


def advance_into(
    quests: tuple[Quest, ...],
    progress: dict[str, Mapping[str, Any]],
    event: ActivityEvent,
    day: date,
    xp_gained: int,
) -> list[QuestCompleted]:
    """``advance``, writing into ``progress`` (the engine owns it: engine/state.py). Entries are
    replaced, never changed in place, as they may be shared with a frozen state."""
    done: list[QuestCompleted] = []
    for quest in quests:
        if quest.course is not None and event.course != quest.course:
            continue
        period = quest.period_of(event.occurred_at, day)
        if period is None:
            continue
        key = quest_key(quest.id, period)
        entry = progress.get(key) or {}
        values = list(entry.get("v") or [0.0] * len(quest.objectives))
        if len(values) != len(quest.objectives):  # the rules changed: start the period again
            values = [0.0] * len(quest.objectives)
        changed = False
        for i, objective in enumerate(quest.objectives):
            add = _contribution(objective, event, xp_gained)
            if add:
                values[i] = float(values[i]) + add
                changed = True
        if not changed:
            continue
        complete = bool(entry.get("done")) or all(
            v >= o.target for v, o in zip(values, quest.objectives, strict=True)
        )
        new_period = key not in progress
        progress[key] = {"v": values, "done": complete}
        if new_period:  # only a new period can push an old one out
            _prune(progress, quest.id)
        if complete and not entry.get("done"):
            met = "; ".join(
                f"{o.describe()} ({v:g})" for o, v in zip(quest.objectives, values, strict=True)
            )
            done.append(
                QuestCompleted(
                    quest.id,
                    quest.name,
                    period,
                    f"quest `{quest.id}` {quest.name} completed for {period} with event "
                    f"{event.id}: {met}",
                )
            )
    return done


def _contribution(objective: Objective, event: ActivityEvent, xp_gained: int) -> float:
    if not objective.of.matches(event):
        return 0.0
    if objective.kind == "count":
        return 1.0
    if objective.kind == "xp":
        return float(xp_gained)
    value = event.result.score if objective.sum_field == "score" else event.result.duration
    return float(value or 0.0)


def _prune(progress: dict[str, Mapping[str, Any]], quest_id: str) -> None:
    """Keep the newest ``KEEP_PERIODS`` periods of a quest (period keys sort by time)."""
    prefix = f"{quest_id}|"
    mine = sorted(k for k in progress if k.startswith(prefix))
    for key in mine[:-KEEP_PERIODS]:
        del progress[key]


# --- parsing ---------------------------------------------------------------------------------


def _objective(raw: Any, path: str, errors: list[str]) -> Objective | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object")
        return None
    kinds = [k for k in ("count", "sum_of", "xp") if k in raw]
    if len(kinds) != 1:
        errors.append(f"{path}: needs exactly one of count, sum_of, xp")
        return None
    kind: ObjectiveKind = kinds[0]  # type: ignore[assignment]
    before = len(errors)
    target: Any = raw[kind]
    sum_field = "score"
    allowed = {kind, "of"}
    if kind == "sum_of":
        allowed.add("at_least")
        sum_field, target = raw[kind], raw.get("at_least")
        if sum_field not in ("score", "duration"):
            errors.append(f"{path}.sum_of: must be one of score, duration")
        if isinstance(target, bool) or not isinstance(target, int | float) or target <= 0:
            errors.append(f"{path}.at_least: must be a positive number")
    elif isinstance(target, bool) or not isinstance(target, int) or target < 1:
        errors.append(f"{path}.{kind}: must be a positive integer")
    errors.extend(f"{path}.{k}: unknown field" for k in sorted(set(raw) - allowed))
    of = _parse_filter(raw.get("of"), f"{path}.of", errors)
    if len(errors) > before:
        return None
    return Objective(kind, float(target), of, str(sum_field))


def _reward(raw: Any, path: str, errors: list[str]) -> Reward:
    if not isinstance(raw, Mapping) or not raw:
        errors.append(f"{path}: must be an object with xp, currency and/or badge")
        return Reward()
    values: dict[str, int] = {}
    for key in ("xp", "currency"):
        value = raw.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REWARD:
            errors.append(f"{path}.{key}: must be an integer from 0 to {MAX_REWARD}")
            value = 0
        values[key] = value
    badge = raw.get("badge")
    if badge is not None and (not isinstance(badge, str) or not RULE_ID_PATTERN.fullmatch(badge)):
        errors.append(f"{path}.badge: must be a badge id")
        badge = None
    errors.extend(
        f"{path}.{k}: unknown field" for k in sorted(set(raw) - {"xp", "currency", "badge"})
    )
    return Reward(values["xp"], values["currency"], badge)


def parse_quest(raw: Any, path: str, seen: set[str], errors: list[str]) -> Quest | None:
    """One entry of ``quests``; None (with errors appended) when it is invalid."""
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object")
        return None
    before = len(errors)
    quest_id = raw.get("id")
    if not isinstance(quest_id, str) or not RULE_ID_PATTERN.fullmatch(quest_id):
        errors.append(f"{path}.id: must be 1-100 lowercase letters, digits or . _ -")
    elif quest_id in seen:
        errors.append(f"{path}.id: duplicate quest id {quest_id!r}")
    name = raw.get("name", quest_id)
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        errors.append(f"{path}.name: must be text of 1-200 characters")
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.append(f"{path}.description: must be text")
    period = raw.get("period")
    starts = ends = None
    if period not in ("daily", "weekly", "dated"):
        errors.append(f"{path}.period: must be daily, weekly or dated")
    elif period == "dated":
        try:
            starts = parse_timestamp(raw.get("from"))
            ends = parse_timestamp(raw.get("until"))
            if starts >= ends:
                errors.append(f"{path}.until: must be after from")
        except ValueError as exc:
            errors.append(f"{path}.from/until: {exc}")
    elif "from" in raw or "until" in raw:
        errors.append(f"{path}: from and until are for dated quests only")
    course = raw.get("course")
    if course is not None and (not isinstance(course, str) or not 0 < len(course) <= 255):
        errors.append(f"{path}.course: must be a course id")
    raw_objectives = raw.get("objectives")
    objectives: list[Objective] = []
    if not isinstance(raw_objectives, list) or not 1 <= len(raw_objectives) <= 10:
        errors.append(f"{path}.objectives: must be a list of 1 to 10 objectives")
    else:
        for i, item in enumerate(raw_objectives):
            objective = _objective(item, f"{path}.objectives[{i}]", errors)
            if objective is not None:
                objectives.append(objective)
    reward = _reward(raw.get("reward"), f"{path}.reward", errors)
    errors.extend(f"{path}.{k}: unknown field" for k in sorted(set(raw) - QUEST_FIELDS))
    if len(errors) > before:
        return None
    seen.add(str(quest_id))
    assert period in ("daily", "weekly", "dated")
    return Quest(
        id=str(quest_id),
        name=str(name),
        period=period,
        objectives=tuple(objectives),
        reward=reward,
        starts=starts,
        ends=ends,
        course=course,
        description=str(description),
    )
