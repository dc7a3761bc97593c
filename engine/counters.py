"""The per-player memory the XP rules need: XP per rule per local day, per rule per object, and
the time of the last award per rule and object (for cooldowns).

Plain data, saved as JSON beside the player's aggregates in the same transaction as the ledger
(``players.rule_state``), so the engine stays pure and a replay sees exactly what live processing
saw. Keys are ``"<rule id>|<day or object>"``: rule ids cannot contain ``|``, so the split is
unambiguous. Only rules that use caps, cooldowns or ``first_time_per_object`` write here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

# Day counters older than this (before the newest day written) are dropped: an event delivered
# more than a week late meets a fresh daily cap. Documented in docs/rules.md.
DAY_WINDOW = 7


# One award to remember: (rule id, local day or None, object or None, epoch seconds or None,
# amount, cooldown seconds or None, the object the cooldown is per).
Award = tuple[str, date | None, str | None, int | None, int, int | None, str]


@dataclass(frozen=True)
class RuleCounters:
    day_xp: Mapping[str, int] = field(default_factory=dict)
    object_xp: Mapping[str, int] = field(default_factory=dict)
    last_award: Mapping[str, int] = field(default_factory=dict)  # key -> UTC epoch seconds
    # Badge criteria tallies (engine/badges.py), keyed "<leaf key>|<course or *>".
    tallies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Quest progress (engine/quests.py), keyed "<quest id>|<period>": {"v": [...], "done": bool}.
    quests: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def xp_on_day(self, rule_id: str, day: date) -> int:
        return self.day_xp.get(f"{rule_id}|{day.isoformat()}", 0)

    def xp_on_object(self, rule_id: str, obj: str) -> int | None:
        """XP this rule gave for ``obj`` so far; None when it never awarded for it."""
        return self.object_xp.get(f"{rule_id}|{obj}")

    def last_award_at(self, rule_id: str, obj: str) -> int | None:
        return self.last_award.get(f"{rule_id}|{obj}")

    def after_award(
        self,
        rule_id: str,
        *,
        day: date | None,
        obj: str | None,
        at: int | None,
        amount: int,
        cooldown: int | None,
        cooldown_object: str = "-",
    ) -> RuleCounters:
        """The counters once ``amount`` XP was awarded; ``None`` arguments are not tracked.

        ``cooldown_object`` is the object the cooldown is per (``-`` for events without one)."""
        day_xp, object_xp, last = self.day_xp, self.object_xp, self.last_award
        if day is not None:
            oldest = (day - timedelta(days=DAY_WINDOW)).isoformat()
            key = f"{rule_id}|{day.isoformat()}"
            day_xp = {k: v for k, v in day_xp.items() if k.partition("|")[2] >= oldest}
            day_xp[key] = day_xp.get(key, 0) + amount
        if obj is not None:
            key = f"{rule_id}|{obj}"
            object_xp = {**object_xp, key: object_xp.get(key, 0) + amount}
        if at is not None and cooldown is not None:
            prefix = f"{rule_id}|"
            last = {
                k: v for k, v in last.items() if not (k.startswith(prefix) and at - v >= cooldown)
            }
            key = f"{rule_id}|{cooldown_object}"
            last[key] = max(at, last.get(key, at))
        return RuleCounters(day_xp, object_xp, last, self.tallies, self.quests)

    def after_awards(self, awards: list[Award]) -> RuleCounters:
        """The counters after several awards of one event, in order: the same result as
        ``after_award`` one by one, but each map is copied once per event rather than once per
        award, which matters when a player's maps hold thousands of objects."""
        if not awards:
            return self
        day_xp: dict[str, int] | None = None
        object_xp: dict[str, int] | None = None
        last: dict[str, int] | None = None
        expired: dict[str, tuple[int, int]] = {}  # rule prefix -> (at, cooldown)
        for rule_id, day, obj, at, amount, cooldown, cooldown_object in awards:
            if day is not None:
                if day_xp is None:
                    oldest = (day - timedelta(days=DAY_WINDOW)).isoformat()
                    day_xp = {k: v for k, v in self.day_xp.items() if k.partition("|")[2] >= oldest}
                key = f"{rule_id}|{day.isoformat()}"
                day_xp[key] = day_xp.get(key, 0) + amount
            if obj is not None:
                if object_xp is None:
                    object_xp = dict(self.object_xp)
                key = f"{rule_id}|{obj}"
                object_xp[key] = object_xp.get(key, 0) + amount
            if at is not None and cooldown is not None:
                if last is None:
                    last = dict(self.last_award)
                expired[f"{rule_id}|"] = (at, cooldown)
                key = f"{rule_id}|{cooldown_object}"
                last[key] = max(at, last.get(key, at))
        if last is not None and expired:
            last = {
                k: v
                for k, v in last.items()
                if not (
                    (hit := expired.get(k.partition("|")[0] + "|")) is not None
                    and hit[0] - v >= hit[1]
                    and hit[0] != v
                )
            }
        return RuleCounters(
            self.day_xp if day_xp is None else day_xp,
            self.object_xp if object_xp is None else object_xp,
            self.last_award if last is None else last,
            self.tallies,
            self.quests,
        )

    def to_json(self) -> dict[str, Any] | None:
        """The stored form; None when there is nothing to remember."""
        if not (self.day_xp or self.object_xp or self.last_award or self.tallies or self.quests):
            return None
        out: dict[str, Any] = {
            "day_xp": dict(self.day_xp),
            "object_xp": dict(self.object_xp),
            "last_award": dict(self.last_award),
            "tallies": {k: dict(v) for k, v in self.tallies.items()},
        }
        if self.quests:  # only written when a rule set has quests, so older rows stay the same
            out["quests"] = {k: dict(v) for k, v in self.quests.items()}
        return out

    @classmethod
    def from_json(cls, data: Any) -> RuleCounters:
        """Read the stored form; anything unreadable counts as empty (counters only limit XP)."""
        if not isinstance(data, Mapping):
            return cls()

        def ints(value: Any) -> dict[str, int]:
            if not isinstance(value, Mapping):
                return {}
            return {str(k): int(v) for k, v in value.items() if isinstance(v, int | float)}

        raw_tallies = data.get("tallies")
        tallies = (
            {str(k): v for k, v in raw_tallies.items() if isinstance(v, Mapping)}
            if isinstance(raw_tallies, Mapping)
            else {}
        )
        raw_quests = data.get("quests")
        quests = (
            {str(k): v for k, v in raw_quests.items() if isinstance(v, Mapping)}
            if isinstance(raw_quests, Mapping)
            else {}
        )
        return cls(
            ints(data.get("day_xp")),
            ints(data.get("object_xp")),
            ints(data.get("last_award")),
            tallies,
            quests,
        )
