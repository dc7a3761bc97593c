"""The engine as it was before it was compiled per rule set (issue 3, performance): kept as a
reference the fast engine must agree with, decision for decision and state for state.

A plain, direct reading of docs/rules.md; deliberately not optimised. Only tests use it.

``evaluate`` is a pure function: the same (event, state, rules, zone) always gives the same
decisions. That is what lets live processing, simulation and replay share one code path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from engine.badges import Badge, Facts, satisfied, update_tally
from engine.counters import Award, RuleCounters
from engine.decisions import (
    BadgeAwarded,
    CurrencyAwarded,
    Decision,
    LevelReached,
    QuestCompleted,
    StreakFreezeUsed,
    StreakMilestoneReached,
    StreakUpdated,
    XpAwarded,
)
from engine.evaluate import PlayerState
from engine.events import ActivityEvent
from engine.quests import Objective, Quest, quest_key
from engine.rules import RuleBook, RuleSet
from engine.streaks import extend_with_freezes, local_day
from engine.xp_rules import Multiplier, XpRule


def idempotency_key(event: ActivityEvent, rule_id: str) -> str:
    """The ledger key for (event, rule): a replay of the same event under the same rule collides."""
    return f"{event.source}|{event.id}|{rule_id}"


def _award(
    rule: XpRule,
    rules: RuleSet,
    event: ActivityEvent,
    day: date,
    counters: RuleCounters,
    at: int,
    active: list[Multiplier],
) -> tuple[int, list[str]] | None:
    """The XP ``rule`` gives for ``event`` and the explanation details, or None for nothing."""
    reasons = rule.when.reasons(event)
    if reasons is None:
        return None
    obj = event.object_id
    if rule.when.first_time_per_object:
        if obj is None or counters.xp_on_object(rule.id, obj) is not None:
            return None
        reasons.append(f"first time on object {obj}")
    if rule.cooldown is not None:
        last = counters.last_award_at(rule.id, obj or "-")
        if last is not None and abs(at - last) < rule.cooldown:
            return None
    amount, arithmetic = rule.base_amount(event)
    details = [arithmetic] if arithmetic else []
    details += reasons
    for multiplier in active:
        if multiplier.rules is not None and rule.id not in multiplier.rules:
            continue
        amount = round(amount * multiplier.factor)
        details.append(f"x{multiplier.factor:g} multiplier `{multiplier.id}`")
    if rule.cap_per_object is not None and obj is not None:
        room = rule.cap_per_object - (counters.xp_on_object(rule.id, obj) or 0)
        if amount > room:
            amount = max(0, room)
            details.append(f"capped at {rule.cap_per_object} XP per object")
    if rule.cap_per_day is not None:
        room = rule.cap_per_day - counters.xp_on_day(rule.id, day)
        if amount > room:
            amount = max(0, room)
            details.append(f"capped at {rule.cap_per_day} XP per day ({day.isoformat()})")
    if amount <= 0 and not rule.currency_only:
        return None
    return max(0, amount), details


def reference_evaluate(
    event: ActivityEvent, state: PlayerState, rules: RuleSet | RuleBook, zone: str
) -> tuple[list[Decision], PlayerState]:
    """Decisions for ``event`` and the player's state after them.

    ``zone`` is the player's IANA time zone (or the tenant's): it decides the streak day and the
    day a daily cap counts against. A ``RuleBook`` picks the event's course rules.
    """
    ruleset = rules.for_course(event.course) if isinstance(rules, RuleBook) else rules
    decisions: list[Decision] = []
    xp = state.xp
    counters = state.counters
    day = local_day(event.occurred_at, zone)
    awards: list[Award] = []
    at = int(event.occurred_at.timestamp())
    # The multipliers whose window holds the event, found once per event, not once per rule.
    active = [m for m in ruleset.multipliers if m.start <= event.occurred_at < m.end]
    for rule in ruleset.rules_for(event.type):
        found = _award(rule, ruleset, event, day, counters, at, active)
        if found is None:
            continue
        amount, details = found
        xp += amount
        why = f" ({'; '.join(details)})" if details else ""
        head = f"rule `{rule.id}` matched {event.type} event {event.id}"
        if amount > 0:
            decisions.append(
                XpAwarded(
                    idempotency_key=idempotency_key(event, rule.id),
                    rule_id=rule.id,
                    amount=amount,
                    course=event.course,
                    explanation=f"{head}: +{amount} XP{why}",
                )
            )
        if rule.currency > 0:
            decisions.append(
                CurrencyAwarded(
                    idempotency_key=idempotency_key(event, rule.id),
                    rule_id=rule.id,
                    amount=rule.currency,
                    explanation=f"{head}: +{rule.currency} coins{why}",
                )
            )
        if rule.cap_per_day is not None or rule.tracks_objects or rule.cooldown is not None:
            # Rules have distinct ids, so no rule of this event reads another's counters:
            # the updates can wait for the end of the loop and copy each map once.
            awards.append(
                (
                    rule.id,
                    day if rule.cap_per_day is not None else None,
                    event.object_id if rule.tracks_objects else None,
                    at if rule.cooldown is not None else None,
                    amount,
                    rule.cooldown,
                    event.object_id or "-",
                )
            )
    counters = counters.after_awards(awards)
    level = ruleset.levels.level_for(xp)
    if level > state.level:
        decisions.append(LevelReached(level=level, previous=state.level))
    streak, frozen = extend_with_freezes(state.streak, day, state.freezes)
    freezes = state.freezes - len(frozen)
    if frozen:
        decisions.append(StreakFreezeUsed(tuple(frozen), freezes))
    if streak != state.streak:
        assert streak.last_day is not None
        decisions.append(StreakUpdated(streak.current, streak.longest, streak.last_day))
        if streak.current > state.streak.current or streak.current == 1:
            for milestone in ruleset.streaks.milestones:
                if milestone.days == streak.current:
                    given = max(0, min(milestone.freezes, ruleset.streaks.max_freezes - freezes))
                    freezes += given
                    decisions.append(StreakMilestoneReached(milestone.days, day, given))
    level = max(level, state.level)
    held = state.badges
    if ruleset.badges:
        live_changed = xp != state.xp or level != state.level or streak != state.streak
        facts = (streak.current, level, xp)
        counters, held, earned = _badges(event, ruleset.badges, counters, held, facts, live_changed)
        decisions.extend(earned)
    if ruleset.quests:
        progress, completed = advance(ruleset.quests, counters.quests, event, day, xp - state.xp)
        counters = RuleCounters(
            counters.day_xp, counters.object_xp, counters.last_award, counters.tallies, progress
        )
        decisions.extend(completed)
    return decisions, PlayerState(xp, level, streak, counters, held, freezes)


def badge_key(event: ActivityEvent, badge_id: str, scope: str, tier: int) -> str:
    """The award's idempotency key: the event's plus the badge, its scope and tier. A course id
    can be long, so the scope enters as a short hash; the key stays under 512 characters."""
    digest = hashlib.sha256(f"{badge_id}|{scope}|{tier}".encode()).hexdigest()[:16]
    return f"{event.source}|{event.id}|badge:{badge_id}:{tier}:{digest}"


def _badges(
    event: ActivityEvent,
    badges: tuple[Badge, ...],
    counters: RuleCounters,
    held: Mapping[str, tuple[int, int | None]],
    live: tuple[int, int, int],
    live_changed: bool,
) -> tuple[RuleCounters, Mapping[str, tuple[int, int | None]], list[BadgeAwarded]]:
    """Update badge tallies with ``event`` and award every tier that now holds."""
    at = int(event.occurred_at.timestamp())
    tallies = dict(counters.tallies)
    new_held = dict(held)
    earned: list[BadgeAwarded] = []
    for badge in badges:
        if badge.scope == "course":
            if event.course is None:
                continue
            scope = event.course
        else:
            scope = "*"
        touched = False
        view: dict[str, Mapping[str, object]] = {}
        has_live = False
        for leaf in badge._leaves:
            name = f"{leaf.key}|{scope}"
            if leaf.kind in ("streak", "level", "xp"):
                has_live = True
                continue
            if leaf.of.matches(event):
                tallies[name] = update_tally(tallies.get(name), leaf, event)
                touched = True
            if name in tallies:
                view[leaf.key] = tallies[name]
        if not touched and not (has_live and live_changed):
            continue
        key = f"{badge.id}|{scope}"
        owned = new_held.get(key)
        start = 0
        if owned is not None and (owned[1] is None or at < owned[1]):
            start = owned[0] + 1
        facts = Facts(view, live[0], live[1], live[2], at)
        for index in range(start, len(badge.tiers)):
            tier = badge.tiers[index]
            reasons: list[str] = []
            if not satisfied(tier.criteria, facts, reasons):
                break
            expiry = at + badge.expires_after if badge.expires_after is not None else None
            new_held[key] = (index, expiry)
            label = badge.name if len(badge.tiers) == 1 else f"{badge.name} ({tier.name})"
            where = f" in course {scope}" if badge.scope == "course" else ""
            earned.append(
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
                    ),
                )
            )
    return (
        RuleCounters(
            counters.day_xp, counters.object_xp, counters.last_award, tallies, counters.quests
        ),
        new_held,
        earned,
    )


def advance(
    quests: tuple[Quest, ...],
    progress: Mapping[str, Mapping[str, Any]],
    event: ActivityEvent,
    day: date,
    xp_gained: int,
) -> tuple[dict[str, Mapping[str, Any]], list[QuestCompleted]]:
    """Progress after ``event`` (which earned ``xp_gained`` XP) and the quests it completed."""
    out = dict(progress)
    done: list[QuestCompleted] = []
    for quest in quests:
        if quest.course is not None and event.course != quest.course:
            continue
        period = quest.period_of(event.occurred_at, day)
        if period is None:
            continue
        key = quest_key(quest.id, period)
        entry = out.get(key) or {}
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
        out[key] = {"v": values, "done": complete}
        _prune(out, quest.id)
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
    return out, done


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
    """Keep the newest ``2`` periods of a quest (period keys sort by time)."""
    prefix = f"{quest_id}|"
    mine = sorted(k for k in progress if k.startswith(prefix))
    for key in mine[:-2]:
        del progress[key]
