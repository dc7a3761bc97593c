"""Daily streaks counted in the player's own calendar, not in UTC.

A day is the local date of the activity in the player's IANA zone, so a learner in Auckland who
studies at 08:00 local on two mornings has a 2-day streak even though both fall on one UTC date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Streak:
    current: int = 0
    longest: int = 0
    last_day: date | None = None


def local_day(moment: datetime, zone: str) -> date:
    """The calendar date of ``moment`` in ``zone`` (an IANA name)."""
    return moment.astimezone(ZoneInfo(zone)).date()


def extend(streak: Streak, day: date) -> Streak:
    """The streak after an activity on ``day``.

    Same day: unchanged. Next day: one longer. A gap: a new streak of 1. An activity dated before
    the last one (a late delivery) never breaks a streak.
    """
    if streak.last_day is None:
        return Streak(1, max(1, streak.longest), day)
    gap = (day - streak.last_day).days
    if gap <= 0:
        return streak
    current = streak.current + 1 if gap == 1 else 1
    return Streak(current, max(current, streak.longest), day)


def extend_with_freezes(streak: Streak, day: date, freezes: int) -> tuple[Streak, list[date]]:
    """Like ``extend``, but a gap of missed days is bridged when the player owns a streak freeze
    for each missed day: the freezes are used up and the streak goes on. Returns the new streak
    and the days the freezes covered (empty when none were used)."""
    if streak.last_day is None or freezes <= 0:
        return extend(streak, day), []
    gap = (day - streak.last_day).days
    if gap <= 1:
        return extend(streak, day), []
    missed = [date.fromordinal(streak.last_day.toordinal() + i) for i in range(1, gap)]
    if len(missed) > freezes:
        return extend(streak, day), []
    current = streak.current + 1
    return Streak(current, max(current, streak.longest), day), missed


@dataclass(frozen=True)
class Milestone:
    days: int
    freezes: int = 0  # streak freezes given when the milestone is reached


@dataclass(frozen=True)
class StreakRules:
    """The ``streaks`` section: milestones (events, optionally rewarded with freezes) and the
    most freezes a player may hold."""

    milestones: tuple[Milestone, ...] = ()
    max_freezes: int = 2


def parse_streak_rules(raw: object, errors: list[str]) -> StreakRules:
    """Read ``{milestones: [7, {days: 30, freezes: 1}], max_freezes: 2}``."""
    if raw is None:
        return StreakRules()
    if not isinstance(raw, dict):
        errors.append("streaks: must be an object with milestones and/or max_freezes")
        return StreakRules()
    before = len(errors)
    milestones: list[Milestone] = []
    items = raw.get("milestones", [])
    if not isinstance(items, list):
        errors.append("streaks.milestones: must be a list of days or {days, freezes}")
        items = []
    for i, item in enumerate(items):
        path = f"streaks.milestones[{i}]"
        days, freezes = (
            (item.get("days"), item.get("freezes", 0))
            if isinstance(item, dict)
            else (
                item,
                0,
            )
        )
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 10_000:
            errors.append(f"{path}: days must be an integer from 1 to 10000")
            continue
        if isinstance(freezes, bool) or not isinstance(freezes, int) or not 0 <= freezes <= 10:
            errors.append(f"{path}.freezes: must be an integer from 0 to 10")
            continue
        if isinstance(item, dict):
            errors.extend(
                f"{path}.{k}: unknown field" for k in sorted(set(item) - {"days", "freezes"})
            )
        if any(m.days == days for m in milestones):
            errors.append(f"{path}: duplicate milestone {days}")
            continue
        milestones.append(Milestone(days, freezes))
    cap = raw.get("max_freezes", 2)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= 100:
        errors.append("streaks.max_freezes: must be an integer from 0 to 100")
        cap = 2
    errors.extend(
        f"streaks.{k}: unknown field" for k in sorted(set(raw) - {"milestones", "max_freezes"})
    )
    if len(errors) > before:
        return StreakRules()
    return StreakRules(tuple(sorted(milestones, key=lambda m: m.days)), cap)
