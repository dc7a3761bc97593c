"""A rule set compiled once for evaluation, and the engine step that runs it.

Why this exists: ``evaluate`` runs for every event, live and in replays of a million stored
events. Everything that depends only on the rule set is done here once, not per event:

- XP rules become closures with their limits, explanation prefix and counter keys bound;
- per event type, a plan lists only the XP rules, badges and quests that type can touch (an
  event of a type no badge leaf or quest objective names skips them without a look);
- a badge tier's criteria are checked without building its explanation, which is built only
  for a tier that is earned.

The step updates a ``WorkingState`` in place (copy on write, engine/state.py). The semantics
are exactly those of the plain reading of docs/rules.md: tests/engine/test_compiled.py runs
both over random streams and compares every decision and the final state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from engine.badges import (
    MAX_DISTINCT,
    Badge,
    Criterion,
    Facts,
    Group,
    Leaf,
    measure,
    satisfied,
    tally_value,
    update_tally,
)
from engine.decisions import (
    BadgeAwarded,
    CurrencyAwarded,
    Decision,
    LevelReached,
    StreakFreezeUsed,
    StreakMilestoneReached,
    StreakUpdated,
    XpAwarded,
)
from engine.events import ActivityEvent
from engine.levels import LevelCurve
from engine.quests import Quest, advance_into
from engine.state import WorkingState
from engine.streaks import StreakRules, extend_with_freezes
from engine.xp_rules import Conditions, Multiplier, XpRule

if TYPE_CHECKING:
    from engine.rules import RuleSet

# (event, state, epoch seconds, local day ISO, active multipliers, decisions out, explain)
# -> XP given
XpStep = Callable[
    [ActivityEvent, WorkingState, int, str, Sequence[Multiplier], list[Decision], bool], int
]

NO_CONDITIONS = Conditions()


@lru_cache(maxsize=512)
def zone_info(name: str) -> ZoneInfo:
    """The zone object for an IANA name, looked up once per name."""
    return ZoneInfo(name)


def _compile_xp(rule: XpRule) -> XpStep:
    """One XP rule as a closure: the arithmetic and explanation of engine/evaluate.py's
    documented order (conditions, first time, cooldown, points, multipliers, caps)."""
    rid = rule.id
    prefix = rid + "|"
    head = f"rule `{rid}` matched {rule.on} event "
    plain = rule.when == NO_CONDITIONS
    reasons_of = rule.when.reasons
    matches = rule.when.matches
    first = rule.when.first_time_per_object
    cooldown = rule.cooldown
    cap_object = rule.cap_per_object
    cap_day = rule.cap_per_day
    tracks = rule.tracks_objects
    currency = rule.currency
    currency_only = rule.currency_only
    base = rule.base_amount
    amount_only = rule.amount_only

    def step(
        event: ActivityEvent,
        state: WorkingState,
        at: int,
        day: str,
        active: Sequence[Multiplier],
        out: list[Decision],
        explain: bool,
    ) -> int:
        reasons: list[str] = []
        if not plain:
            if explain:
                found = reasons_of(event)
                if found is None:
                    return 0
                reasons = found
            elif not matches(event):
                return 0
        obj = event.object_id
        if first:
            if obj is None or prefix + obj in state.object_xp:
                return 0
            if explain:
                reasons.append(f"first time on object {obj}")
        cooldown_key = prefix + (obj or "-")
        if cooldown is not None:
            last = state.last_award.get(cooldown_key)
            if last is not None and abs(at - last) < cooldown:
                return 0
        if explain:
            amount, arithmetic = base(event)
            details = [arithmetic, *reasons] if arithmetic else reasons
        else:
            amount, details = amount_only(event), reasons
        for multiplier in active:
            if multiplier.rules is not None and rid not in multiplier.rules:
                continue
            amount = round(amount * multiplier.factor)
            if explain:
                details.append(f"x{multiplier.factor:g} multiplier `{multiplier.id}`")
        if cap_object is not None and obj is not None:
            room = cap_object - (state.object_xp.get(prefix + obj) or 0)
            if amount > room:
                amount = max(0, room)
                if explain:
                    details.append(f"capped at {cap_object} XP per object")
        day_key = prefix + day
        if cap_day is not None:
            room = cap_day - state.day_xp.get(day_key, 0)
            if amount > room:
                amount = max(0, room)
                if explain:
                    details.append(f"capped at {cap_day} XP per day ({day})")
        if amount <= 0:
            if not currency_only:
                return 0
            amount = 0
        key = f"{event.source}|{event.id}|{rid}"
        why = f" ({'; '.join(details)})" if details else ""
        if amount > 0:
            text = f"{head}{event.id}: +{amount} XP{why}" if explain else ""
            out.append(XpAwarded(key, rid, amount, event.course, text))
        if currency > 0:
            text = f"{head}{event.id}: +{currency} coins{why}" if explain else ""
            out.append(CurrencyAwarded(key, rid, currency, text))
        if cap_day is not None:
            state.add_day(day_key, day, amount)
        if tracks and obj is not None:
            state.add_object(prefix + obj, amount)
        if cooldown is not None:
            state.add_cooldown(rid, cooldown_key, at, cooldown)
        return amount

    return step


def idempotency_key(event: ActivityEvent, rule_id: str) -> str:
    """The ledger key for (event, rule): a replay of the same event under the same rule collides."""
    return f"{event.source}|{event.id}|{rule_id}"


def badge_key(event: ActivityEvent, badge_id: str, scope: str, tier: int) -> str:
    """The award's idempotency key: the event's plus the badge, its scope and tier. A course id
    can be long, so the scope enters as a short hash; the key stays under 512 characters."""
    digest = hashlib.sha256(f"{badge_id}|{scope}|{tier}".encode()).hexdigest()[:16]
    return f"{event.source}|{event.id}|badge:{badge_id}:{tier}:{digest}"


Live = tuple[int, int, int]  # streak, level, XP after the event


def _holds(
    node: Criterion,
    state: WorkingState,
    suffix: str,
    live: Live,
    at: int,
) -> bool:
    """Whether ``node`` holds: ``satisfied`` without building the explanation (most checks
    fail, and only an earned tier needs its reasons)."""
    if isinstance(node, Group):
        parts = node.parts
        if node.mode == "all_of":
            return all(_holds(p, state, suffix, live, at) for p in parts)
        return any(_holds(p, state, suffix, live, at) for p in parts)
    kind = node.kind
    if kind == "streak":
        value = float(live[0])
    elif kind == "level":
        value = float(live[1])
    elif kind == "xp":
        value = float(live[2])
    else:
        name = node.key + suffix
        tally = state.tallies.get(name)
        if kind == "count" and node.within is not None and name in state._sorted_windows:
            # In time order, the entries out of the window are a prefix.
            assert tally is not None
            entries = tally["w"]
            cut = at - node.within
            skip = 0
            while skip < len(entries) and entries[skip][0] <= cut:
                skip += 1
            value = float(len(entries) - skip)
        else:
            value = measure(tally, node, at)
    return value >= node.threshold


def _feed(state: WorkingState, name: str, leaf: Leaf, event: ActivityEvent, at: int) -> None:
    """``update_tally`` for the tally ``name``, in place when this state created the tally
    (a replay feeds the same tallies thousands of times; copying them was its main cost)."""
    tallies = state.tally_map()
    tally = tallies.get(name)
    if tally is not None and name in state._fed:
        mine: dict[str, Any] = tally  # type: ignore[assignment]  # created by _feed below
        if leaf.within is not None:
            entries = mine["w"]
            if name in state._sorted_windows and (not entries or entries[-1][0] <= at):
                cut = at - leaf.within
                skip = 0
                while skip < len(entries) and entries[skip][0] <= cut:
                    skip += 1
                if skip:
                    del entries[:skip]
                entries.append([at, tally_value(leaf, event), event.object_id])
                if len(entries) > MAX_DISTINCT:
                    del entries[:-MAX_DISTINCT]
                return
        elif leaf.kind == "count":
            mine["n"] = int(mine.get("n", 0)) + 1
            return
        elif leaf.kind == "sum_of":
            mine["s"] = float(mine.get("s", 0.0)) + tally_value(leaf, event)
            return
        elif leaf.kind == "best_score":
            mine["m"] = max(float(mine.get("m", 0.0)), tally_value(leaf, event))
            return
        else:
            objects = mine["o"]
            obj = event.object_id
            if obj is not None and len(objects) < MAX_DISTINCT and obj not in objects:
                objects.append(obj)
            return
    new = update_tally(tally, leaf, event, at)
    tallies[name] = new
    state._fed.add(name)
    if leaf.within is not None:
        entries = new["w"]
        if all(entries[i][0] <= entries[i + 1][0] for i in range(len(entries) - 1)):
            state._sorted_windows.add(name)
        else:
            state._sorted_windows.discard(name)


@dataclass(frozen=True)
class _BadgePlan:
    """One badge as events of one type meet it: the leaves those events may feed (each with
    its conditions, None when it has none) and whether the badge has live criteria."""

    badge: Badge
    leaves: tuple[tuple[Leaf, Callable[[ActivityEvent], bool] | None], ...]
    has_live: bool
    all_leaves: tuple[Leaf, ...]


@dataclass(frozen=True)
class _Plan:
    """What events of one type can touch."""

    xp: tuple[XpStep, ...]
    badges: tuple[_BadgePlan, ...]
    quests: tuple[Quest, ...]


def _may_match(types: frozenset[str] | None, event_type: str) -> bool:
    return types is None or event_type in types


class CompiledRules:
    """A ``RuleSet`` prepared for evaluation (built once per rule set, see RuleSet.compiled)."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.levels: LevelCurve = ruleset.levels
        self.streaks: StreakRules = ruleset.streaks
        self.multipliers: tuple[Multiplier, ...] = ruleset.multipliers
        self._milestones = {m.days: m for m in ruleset.streaks.milestones}
        self._ruleset = ruleset
        self._xp = {rule.id: _compile_xp(rule) for rule in ruleset.xp}
        self._plans: dict[str, _Plan] = {}

    def plan(self, event_type: str) -> _Plan:
        """The XP rules, badges and quests an event of ``event_type`` can touch, in document
        order (the order decisions come out in)."""
        found = self._plans.get(event_type)
        if found is not None:
            return found
        ruleset = self._ruleset
        badges = []
        for badge in ruleset.badges:
            every = badge._leaves
            live = any(leaf.kind in ("streak", "level", "xp") for leaf in every)
            fed = tuple(
                (leaf, None if leaf.of.when == NO_CONDITIONS else leaf.of.when.matches)
                for leaf in every
                if leaf.kind not in ("streak", "level", "xp")
                and _may_match(leaf.of.types, event_type)
            )
            if fed or live:
                badges.append(_BadgePlan(badge, fed, live, every))
        quests = tuple(
            quest
            for quest in ruleset.quests
            if any(_may_match(o.of.types, event_type) for o in quest.objectives)
        )
        found = _Plan(
            tuple(self._xp[rule.id] for rule in ruleset.rules_for(event_type)),
            tuple(badges),
            quests,
        )
        self._plans[event_type] = found
        return found

    def step(
        self, event: ActivityEvent, state: WorkingState, zone: str, explain: bool = True
    ) -> list[Decision]:
        """Apply ``event`` to ``state`` (in place) and return the decisions, in the order
        XP and coins (rule order), level, streak, badges, quests. ``explain=False`` leaves
        the XP, coin and badge explanations empty (see ``evaluate_into``)."""
        plan = self._plans.get(event.type) or self.plan(event.type)
        occurred = event.occurred_at
        at = int(occurred.timestamp())
        local = occurred.astimezone(zone_info(zone)).date()
        day = local.isoformat()
        multipliers = self.multipliers
        active = [m for m in multipliers if m.start <= occurred < m.end] if multipliers else ()
        out: list[Decision] = []
        xp0, level0, streak0 = state.xp, state.level, state.streak
        xp = xp0
        for rule in plan.xp:
            xp += rule(event, state, at, day, active, out, explain)
        state.xp = xp
        level = self.levels.level_for(xp)
        if level > level0:
            out.append(LevelReached(level=level, previous=level0))
        streak = streak0
        if streak0.last_day != local:  # the same local day never changes a streak
            freezes = state.freezes
            streak, frozen = extend_with_freezes(streak0, local, freezes)
            if frozen:
                freezes -= len(frozen)
                out.append(StreakFreezeUsed(tuple(frozen), freezes))
            if streak != streak0:
                assert streak.last_day is not None
                out.append(StreakUpdated(streak.current, streak.longest, streak.last_day))
                milestone = self._milestones.get(streak.current)
                if milestone is not None and (
                    streak.current > streak0.current or streak.current == 1
                ):
                    given = max(0, min(milestone.freezes, self.streaks.max_freezes - freezes))
                    freezes += given
                    out.append(StreakMilestoneReached(milestone.days, local, given))
            state.freezes = freezes
            state.streak = streak
        if level < level0:
            level = level0
        state.level = level
        if plan.badges:
            live_changed = xp != xp0 or level != level0 or streak != streak0
            self._badges(
                plan.badges,
                event,
                state,
                at,
                (streak.current, level, xp),
                live_changed,
                out,
                explain,
            )
        if plan.quests:
            out.extend(advance_into(plan.quests, state.quest_map(), event, local, xp - xp0))
        return out

    @staticmethod
    def _badges(
        plans: tuple[_BadgePlan, ...],
        event: ActivityEvent,
        state: WorkingState,
        at: int,
        live: Live,
        live_changed: bool,
        out: list[Decision],
        explain: bool,
    ) -> None:
        """Feed the event to the badges' tallies and award every tier that now holds."""
        course = event.course
        for plan in plans:
            badge = plan.badge
            if badge.scope == "course":
                if course is None:
                    continue
                scope = course
            else:
                scope = "*"
            suffix = "|" + scope
            touched = False
            for leaf, matches in plan.leaves:
                if matches is None or matches(event):
                    _feed(state, leaf.key + suffix, leaf, event, at)
                    touched = True
            if not touched and not (plan.has_live and live_changed):
                continue
            key = badge.id + suffix
            owned = state.badges.get(key)
            start = 0
            if owned is not None and (owned[1] is None or at < owned[1]):
                start = owned[0] + 1
            for index in range(start, len(badge.tiers)):
                tier = badge.tiers[index]
                if not _holds(tier.criteria, state, suffix, live, at):
                    break
                reasons: list[str] = []
                if explain:
                    current = state.tallies
                    view = {
                        leaf.key: current[leaf.key + suffix]
                        for leaf in plan.all_leaves
                        if leaf.key + suffix in current
                    }
                    facts = Facts(view, live[0], live[1], live[2], at)
                    satisfied(tier.criteria, facts, reasons)
                expiry = at + badge.expires_after if badge.expires_after is not None else None
                state.badge_map()[key] = (index, expiry)
                label = badge.name if len(badge.tiers) == 1 else f"{badge.name} ({tier.name})"
                where = f" in course {scope}" if badge.scope == "course" else ""
                out.append(
                    BadgeAwarded(
                        idempotency_key=badge_key(event, badge.id, scope, index),
                        badge_id=badge.id,
                        name=badge.name,
                        tier=index,
                        tier_name=tier.name,
                        course=None if badge.scope == "tenant" else scope,
                        awarded_at=event.occurred_at,
                        expires_at=datetime.fromtimestamp(expiry, UTC) if expiry else None,
                        explanation=(
                            f"badge `{badge.id}` {label} earned{where} with event {event.id}: "
                            + "; ".join(reasons)
                            if explain
                            else ""
                        ),
                    )
                )
