"""League math: week windows in a zone, cohort placement, zones, promotion and demotion.

Pure (STYLE 1): no I/O and no wall clock. Every function takes the moment it reasons about, so
the live join step, the week-close job, reconcile and the tests all run the same arithmetic.

A league week runs Monday 00:00 to the next Monday 00:00 in the tenant's IANA zone; its key is
that Monday's local date (``2026-11-16``), which sorts in time order as text. Windows are
returned in UTC, so a week of a zone that changes its clocks is 167 or 169 hours long.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

DEFAULT_TIERS: tuple[str, ...] = (
    "Bronze",
    "Silver",
    "Gold",
    "Sapphire",
    "Ruby",
    "Emerald",
    "Amethyst",
    "Pearl",
    "Obsidian",
    "Diamond",
)
DEFAULT_COHORT_SIZE = 30
DEFAULT_PROMOTE = 7
DEFAULT_DEMOTE = 5

WindowKind = Literal["day", "week", "month"]
Zone = Literal["promotion", "safe", "demotion"]
WINDOW_KINDS: tuple[WindowKind, ...] = ("day", "week", "month")


class LeagueConfigError(ValueError):
    """A league configuration that cannot work (no tiers, a cohort of one, negative counts)."""


@dataclass(frozen=True)
class LeagueConfig:
    """Tiers from lowest to highest, the cohort size, and how many move up and down per tier.

    ``promote`` and ``demote`` hold one count per tier. The top tier never promotes and the bottom
    tier never demotes, whatever the counts say.
    """

    tiers: tuple[str, ...] = DEFAULT_TIERS
    cohort_size: int = DEFAULT_COHORT_SIZE
    promote: tuple[int, ...] = (DEFAULT_PROMOTE,) * len(DEFAULT_TIERS)
    demote: tuple[int, ...] = (DEFAULT_DEMOTE,) * len(DEFAULT_TIERS)

    @classmethod
    def build(
        cls,
        tiers: Sequence[str] = DEFAULT_TIERS,
        cohort_size: int = DEFAULT_COHORT_SIZE,
        promote: int | Sequence[int] = DEFAULT_PROMOTE,
        demote: int | Sequence[int] = DEFAULT_DEMOTE,
    ) -> LeagueConfig:
        """A checked config; ``promote``/``demote`` may be one count for every tier or a list."""
        names = tuple(str(t).strip() for t in tiers)
        if not names or any(not n for n in names) or len(set(names)) != len(names):
            raise LeagueConfigError("tiers must be a non-empty list of distinct names")
        if not 2 <= cohort_size <= 1000:
            raise LeagueConfigError("cohort_size must be between 2 and 1000")
        ups = _per_tier(promote, len(names), "promote")
        downs = _per_tier(demote, len(names), "demote")
        config = cls(names, cohort_size, ups, downs)
        for tier, name in enumerate(names):
            up, down = config.promote_count(tier), config.demote_count(tier)
            if up + down > cohort_size:
                raise LeagueConfigError(
                    f"tier {name!r} promotes {up} and demotes {down}: "
                    f"more than a cohort of {cohort_size}"
                )
        return config

    def promote_count(self, tier: int) -> int:
        return 0 if tier >= len(self.tiers) - 1 else self.promote[tier]

    def demote_count(self, tier: int) -> int:
        return 0 if tier <= 0 else self.demote[tier]

    def tier_name(self, tier: int) -> str:
        return self.tiers[max(0, min(tier, len(self.tiers) - 1))]


def _per_tier(value: int | Sequence[int], tiers: int, name: str) -> tuple[int, ...]:
    counts = (value,) * tiers if isinstance(value, int) else tuple(value)
    if len(counts) != tiers:
        raise LeagueConfigError(f"{name} needs one count per tier ({tiers}), got {len(counts)}")
    if any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in counts):
        raise LeagueConfigError(f"{name} counts must be non-negative integers")
    return counts


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) in UTC, named by its first local day."""

    kind: WindowKind
    key: str
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def window(kind: WindowKind, moment: datetime, zone: str) -> Window:
    """The day, week (Monday first) or calendar month holding ``moment`` in ``zone``."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz).date()
    if kind == "day":
        first, after = local, local + timedelta(days=1)
    elif kind == "week":
        first = local - timedelta(days=local.weekday())
        after = first + timedelta(days=7)
    elif kind == "month":
        first = local.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:  # pragma: no cover - Literal guards the callers
        raise ValueError(f"unknown window kind {kind!r}")
    return Window(kind, first.isoformat(), _local_midnight(first, tz), _local_midnight(after, tz))


def week_window(moment: datetime, zone: str) -> Window:
    return window("week", moment, zone)


def previous_week(week: Window, zone: str) -> Window:
    return window("week", week.start - timedelta(seconds=1), zone)


def time_left(now: datetime, win: Window) -> timedelta:
    """What remains of the window at ``now`` (zero once it has ended)."""
    return max(win.end - now, timedelta(0))


@dataclass(frozen=True)
class OpenCohort:
    cohort_id: int
    size: int


@dataclass(frozen=True)
class Placement:
    """Where a batch of joiners of one tier go: existing cohorts, then new cohorts in order.

    ``existing`` maps a cohort id to how many joiners it takes; ``new`` lists the sizes of the
    cohorts to create. Joiners are taken in the order given, filling the fullest open cohort
    first, so a tier has at most one cohort that is not full: nobody is left in a lonely one
    while another has room.
    """

    existing: tuple[tuple[int, int], ...]
    new: tuple[int, ...]


def place(open_cohorts: Sequence[OpenCohort], joiners: int, cohort_size: int) -> Placement:
    """Fill the open cohorts (fullest first), then open as many new cohorts as needed."""
    if joiners < 0:
        raise ValueError("joiners must be >= 0")
    left = joiners
    taken: list[tuple[int, int]] = []
    for cohort in sorted(open_cohorts, key=lambda c: (-c.size, c.cohort_id)):
        if left == 0:
            break
        room = cohort_size - cohort.size
        if room <= 0:
            continue
        n = min(room, left)
        taken.append((cohort.cohort_id, n))
        left -= n
    new: list[int] = []
    while left > 0:
        n = min(cohort_size, left)
        new.append(n)
        left -= n
    return Placement(tuple(taken), tuple(new))


@dataclass(frozen=True)
class Standing:
    rank: int
    player_id: int
    xp: int
    zone: Zone


def rank(scores: Mapping[int, int]) -> list[tuple[int, int, int]]:
    """(rank, player, xp): most XP first; equal XP ranked by player id so every reader agrees."""
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(i + 1, pid, xp) for i, (pid, xp) in enumerate(ordered)]


def zone_for(position: int, size: int, promote: int, demote: int) -> Zone:
    """The zone of 1-based ``position`` in a cohort of ``size``.

    A small cohort never promotes and demotes the same player: promotion takes the top
    ``min(promote, size)`` places, demotion the bottom of what is left.
    """
    ups = min(promote, size)
    downs = min(demote, size - ups)
    if position <= ups:
        return "promotion"
    if position > size - downs:
        return "demotion"
    return "safe"


def standings(scores: Mapping[int, int], tier: int, config: LeagueConfig) -> list[Standing]:
    """A cohort's table with zones, for the widgets and for the week close alike."""
    rows = rank(scores)
    ups, downs = config.promote_count(tier), config.demote_count(tier)
    return [Standing(r, pid, xp, zone_for(r, len(rows), ups, downs)) for r, pid, xp in rows]


Outcome = Literal["promoted", "stayed", "demoted", "left"]


@dataclass(frozen=True)
class Result:
    """One member's week: where they finished and the tier they play next."""

    player_id: int
    rank: int
    xp: int
    zone: Zone
    outcome: Outcome
    tier: int
    next_tier: int


def close_cohort(scores: Mapping[int, int], tier: int, config: LeagueConfig) -> list[Result]:
    """Promote and demote one cohort at the week's end.

    Members who ended the week without positive XP (their XP was reversed) are inactive: they
    leave with their tier kept, and are ranked below every active member without a zone move.
    The active ones are ranked and moved by zone; a player never leaves the tier list.
    """
    active = {pid: xp for pid, xp in scores.items() if xp > 0}
    out: list[Result] = []
    for s in standings(active, tier, config):
        if s.zone == "promotion":
            out.append(Result(s.player_id, s.rank, s.xp, s.zone, "promoted", tier, tier + 1))
        elif s.zone == "demotion":
            out.append(Result(s.player_id, s.rank, s.xp, s.zone, "demoted", tier, tier - 1))
        else:
            out.append(Result(s.player_id, s.rank, s.xp, s.zone, "stayed", tier, tier))
    inactive = sorted(pid for pid in scores if pid not in active)
    for i, pid in enumerate(inactive):
        out.append(Result(pid, len(active) + i + 1, scores[pid], "safe", "left", tier, tier))
    return out
