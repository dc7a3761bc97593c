"""What the engine decides: facts for the worker to apply in one transaction.

Frozen and JSON-safe, so they can be logged, simulated and carried by jobs as plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class XpAwarded:
    """Append ``amount`` XP to the ledger under ``idempotency_key`` (unique per tenant)."""

    idempotency_key: str
    rule_id: str
    amount: int
    course: str | None
    explanation: str


@dataclass(frozen=True)
class LevelReached:
    level: int
    previous: int


@dataclass(frozen=True)
class StreakUpdated:
    current: int
    longest: int
    last_day: date


@dataclass(frozen=True)
class BadgeAwarded:
    """A badge (or a tier of a tiered badge) earned; unique per tenant by ``idempotency_key``.

    ``course`` is the course the badge was earned in for course-scoped badges, else None.
    ``tier`` counts from 0 (the only tier of a one-time badge)."""

    idempotency_key: str
    badge_id: str
    name: str
    tier: int
    tier_name: str
    course: str | None
    awarded_at: datetime
    expires_at: datetime | None
    explanation: str


@dataclass(frozen=True)
class StreakFreezeUsed:
    """Streak freezes from the inventory covered ``days`` (missed local days); ``remaining``
    freezes are left."""

    days: tuple[date, ...]
    remaining: int


@dataclass(frozen=True)
class StreakMilestoneReached:
    """The current streak reached ``days`` on local day ``on``; ``freezes`` were given for it."""

    days: int
    on: date
    freezes: int


@dataclass(frozen=True)
class CurrencyAwarded:
    """Credit ``amount`` coins to the player's currency ledger under ``idempotency_key``."""

    idempotency_key: str
    rule_id: str
    amount: int
    explanation: str


@dataclass(frozen=True)
class QuestCompleted:
    """Every objective of ``quest_id`` was met in ``period``; the reward may now be claimed."""

    quest_id: str
    name: str
    period: str
    explanation: str


Decision = (
    XpAwarded
    | LevelReached
    | StreakUpdated
    | BadgeAwarded
    | StreakFreezeUsed
    | StreakMilestoneReached
    | CurrencyAwarded
    | QuestCompleted
)
