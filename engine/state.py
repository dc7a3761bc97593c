"""A player's state as the engine sees it: frozen between events, mutable during one.

``PlayerState`` is the frozen value ``evaluate`` takes and returns (the worker keeps the one it
loaded to compare with the one it saves). ``WorkingState`` is the same data while the engine is
applying an event: its maps are updated in place, and copied first only when they are still
shared with a frozen ``PlayerState`` (copy on write). Why both: copying every map of a player on
every event was most of the engine's cost, and a replay of a million events owns its states, so
it can keep one ``WorkingState`` per player and never copy at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from engine.counters import DAY_WINDOW, RuleCounters
from engine.streaks import Streak

Held = Mapping[str, tuple[int, int | None]]


@dataclass(frozen=True)
class PlayerState:
    """What the engine needs to know about a player before an event."""

    xp: int = 0
    level: int = 1
    streak: Streak = field(default_factory=Streak)
    counters: RuleCounters = field(default_factory=RuleCounters)
    # Badges held: "<badge id>|<course or *>" -> (highest tier index, expiry as epoch seconds or
    # None). Revoked badges stay here, so they are not simply earned again.
    badges: Held = field(default_factory=dict)
    freezes: int = 0  # streak freezes in the inventory


@lru_cache(maxsize=4096)
def oldest_kept_day(day: str) -> str:
    """The oldest local day (ISO) whose day counters survive an award on ``day``."""
    return (date.fromisoformat(day) - timedelta(days=DAY_WINDOW)).isoformat()


class WorkingState:
    """A player's state, updated in place by ``engine.compiled``.

    Reads use the public attributes; writes go through the ``*_map`` accessors (which copy a
    map still shared with a frozen state) or the ``add_*`` helpers, which also keep the
    bookkeeping that lets old day counters and expired cooldowns be dropped without scanning
    the maps on every award. The result is exactly what ``RuleCounters.after_awards`` gives.
    """

    __slots__ = (
        "_cool_keys",
        "_cool_min",
        "_day_min",
        "_fed",
        "_own_badges",
        "_own_day",
        "_own_last",
        "_own_object",
        "_own_quests",
        "_own_tallies",
        "_sorted_windows",
        "badges",
        "day_xp",
        "freezes",
        "last_award",
        "level",
        "object_xp",
        "quests",
        "streak",
        "tallies",
        "xp",
    )

    def __init__(self, state: PlayerState | None = None) -> None:
        state = state if state is not None else PlayerState()
        counters = state.counters
        self.xp = state.xp
        self.level = state.level
        self.streak = state.streak
        self.freezes = state.freezes
        self.day_xp: Mapping[str, int] = counters.day_xp
        self.object_xp: Mapping[str, int] = counters.object_xp
        self.last_award: Mapping[str, int] = counters.last_award
        self.tallies: Mapping[str, Mapping[str, Any]] = counters.tallies
        self.quests: Mapping[str, Mapping[str, Any]] = counters.quests
        self.badges: Held = state.badges
        # Whether each map was copied by this object already (and so may be written).
        self._own_day = self._own_object = self._own_last = False
        self._own_tallies = self._own_quests = self._own_badges = False
        # The oldest day among the day counters' keys (None: not known yet); per cooldown
        # rule a lower bound of its entries' times and its keys (built on first use): the
        # stale entries are looked for only when the bound says there may be some, and only
        # among the rule's own keys.
        self._day_min: str | None = None
        self._cool_min: dict[str, int] = {}
        self._cool_keys: dict[str, set[str]] | None = None
        # Badge tallies this object created (so may change in place), and the windowed ones
        # among them whose entries are in time order (expired entries are then a prefix).
        self._fed: set[str] = set()
        self._sorted_windows: set[str] = set()

    def freeze(self) -> PlayerState:
        """The frozen state. The maps are handed over: this object must not be written after
        (the pure ``evaluate`` discards it; a replay freezes only at the end)."""
        counters = RuleCounters(
            self.day_xp, self.object_xp, self.last_award, self.tallies, self.quests
        )
        return PlayerState(self.xp, self.level, self.streak, counters, self.badges, self.freezes)

    def tally_map(self) -> dict[str, Mapping[str, Any]]:
        """The badge tallies, writable. Tally values are never changed in place (they may be
        shared with a frozen state): a new tally replaces the old one."""
        if not self._own_tallies:
            self.tallies = dict(self.tallies)
            self._own_tallies = True
        return self.tallies  # type: ignore[return-value]  # a dict once owned

    def quest_map(self) -> dict[str, Mapping[str, Any]]:
        if not self._own_quests:
            self.quests = dict(self.quests)
            self._own_quests = True
        return self.quests  # type: ignore[return-value]

    def badge_map(self) -> dict[str, tuple[int, int | None]]:
        if not self._own_badges:
            self.badges = dict(self.badges)
            self._own_badges = True
        return self.badges  # type: ignore[return-value]

    def add_day(self, key: str, day: str, amount: int) -> None:
        """Count ``amount`` XP of a rule on local ``day`` (``key`` is ``rule|day``), dropping
        the day counters older than ``DAY_WINDOW`` days before ``day`` first."""
        low = self._day_min
        if low is None:
            low = min((k.partition("|")[2] for k in self.day_xp), default=None)
        if not self._own_day:
            self.day_xp = dict(self.day_xp)
            self._own_day = True
        day_xp: dict[str, int] = self.day_xp  # type: ignore[assignment]
        if low is not None and low < day:
            oldest = oldest_kept_day(day)
            if low < oldest:
                for stale in [k for k in day_xp if k.partition("|")[2] < oldest]:
                    del day_xp[stale]
                low = min((k.partition("|")[2] for k in day_xp), default=None)
        day_xp[key] = day_xp.get(key, 0) + amount
        self._day_min = day if low is None or day < low else low

    def add_object(self, key: str, amount: int) -> None:
        if not self._own_object:
            self.object_xp = dict(self.object_xp)
            self._own_object = True
        object_xp: dict[str, int] = self.object_xp  # type: ignore[assignment]
        object_xp[key] = object_xp.get(key, 0) + amount

    def add_cooldown(self, rule_id: str, key: str, at: int, cooldown: int) -> None:
        """Remember an award of ``rule_id`` at ``at`` for its cooldown (``key`` is
        ``rule|object``) and drop the rule's entries whose cooldown has passed."""
        if not self._own_last:
            self.last_award = dict(self.last_award)
            self._own_last = True
        last: dict[str, int] = self.last_award  # type: ignore[assignment]
        index = self._cool_keys
        if index is None:
            index = self._cool_keys = {}
            for name in last:
                index.setdefault(name.partition("|")[0], set()).add(name)
        mine = index.get(rule_id)
        if mine is None:
            mine = index[rule_id] = set()
        old = last.get(key)
        last[key] = at if old is None or at > old else old
        mine.add(key)
        low = self._cool_min.get(rule_id)
        if low is None:
            low = min(last[k] for k in mine)
        elif at < low:
            low = at
        if at - low >= cooldown:
            for stale in [k for k in mine if at - last[k] >= cooldown]:
                del last[stale]
                mine.discard(stale)
            low = min(last[k] for k in mine)
        self._cool_min[rule_id] = low
