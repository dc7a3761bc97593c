"""Evaluate one event against a player's state and the active rules: the whole engine step.

``evaluate`` is a pure function: the same (event, state, rules, zone) always gives the same
decisions. That is what lets live processing, simulation and replay share one code path.
The work itself is done by the rule set's compiled form (engine/compiled.py); ``evaluate_into``
is the same step for a caller that owns a ``WorkingState`` per player (a replay), which saves
copying the player's maps on every event.
"""

from __future__ import annotations

from engine.compiled import badge_key, idempotency_key
from engine.decisions import Decision
from engine.events import ActivityEvent
from engine.rules import RuleBook, RuleSet
from engine.state import PlayerState, WorkingState

__all__ = [
    "PlayerState",
    "WorkingState",
    "badge_key",
    "evaluate",
    "evaluate_into",
    "idempotency_key",
]


def evaluate(
    event: ActivityEvent, state: PlayerState, rules: RuleSet | RuleBook, zone: str
) -> tuple[list[Decision], PlayerState]:
    """Decisions for ``event`` and the player's state after them.

    ``zone`` is the player's IANA time zone (or the tenant's): it decides the streak day and the
    day a daily cap counts against. A ``RuleBook`` picks the event's course rules. ``state`` is
    not changed: a map the event writes is copied first.
    """
    working = WorkingState(state)
    decisions = evaluate_into(event, working, rules, zone)
    return decisions, working.freeze()


def evaluate_into(
    event: ActivityEvent,
    state: WorkingState,
    rules: RuleSet | RuleBook,
    zone: str,
    *,
    explain: bool = True,
) -> list[Decision]:
    """``evaluate`` for a caller that owns ``state``: it is updated in place. Still pure in
    the sense that matters: no I/O, and the same inputs give the same decisions and state.

    ``explain=False`` is for callers that only count (``rules simulate`` compares XP, levels
    and badges): the explanations of XP, coin and badge decisions are left empty instead of
    being formatted; every other field, and the state, are the same."""
    ruleset = rules.for_course(event.course) if isinstance(rules, RuleBook) else rules
    return ruleset.compiled.step(event, state, zone, explain)
