"""The quests widget's data: each running quest with its progress, the time left in its period,
and the completed periods the learner can still claim.

Progress is what the engine wrote into ``players.rule_state`` (``engine/quests.py``); claims are
``quest_claims`` rows; the claim itself goes through ``questline.quests.claim`` (one reward per
player, quest and period, under the player's row lock). This module only reads, in two queries
(the active rule sets and the player's claims), because the player row is already loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.counters import RuleCounters
from engine.quests import Quest, quest_key
from engine.rules import RuleBook
from questline.models import Player
from questline.quests import current_period
from questline.rules_models import QuestClaim
from widgets.data import _zone


@dataclass(frozen=True)
class ObjectiveView:
    describe: str
    progress: float
    target: float


@dataclass(frozen=True)
class QuestCard:
    """One quest in one period, as the learner sees it."""

    quest_id: str
    name: str
    description: str
    period: str  # "2026-11-23", "2026-W48" or "dated"
    current: bool  # False: an earlier, completed period still waiting for its claim
    objectives: tuple[ObjectiveView, ...]
    completed: bool
    claimed: bool
    hours_left: int | None  # until the period ends (current) or the claim lapses (earlier)
    reward_xp: int
    reward_currency: int
    reward_badge: str | None

    @property
    def claimable(self) -> bool:
        return self.completed and not self.claimed


@dataclass(frozen=True)
class ClaimNotice:
    """What the page says after a claim: the reward given, or why nothing was given."""

    ok: bool
    message: str
    quest_name: str = ""


def _period_end(quest: Quest, period: str, tz: ZoneInfo) -> datetime | None:
    """When ``period`` of ``quest`` ends (exclusive), in the learner's zone."""
    if quest.period == "dated":
        return quest.ends
    if quest.period == "daily":
        start = date.fromisoformat(period)
        return datetime.combine(start + timedelta(days=1), time(0), tzinfo=tz)
    year, _, week = period.partition("-W")
    monday = date.fromisocalendar(int(year), int(week), 1)
    return datetime.combine(monday + timedelta(weeks=1), time(0), tzinfo=tz)


def _claim_deadline(quest: Quest, period: str, tz: ZoneInfo) -> datetime | None:
    """An earlier period stays claimable until the end of the period after it (the engine
    keeps the two newest periods of each quest); a dated quest has one period and no lapse."""
    end = _period_end(quest, period, tz)
    if quest.period == "dated" or end is None:
        return None
    return _period_end(quest, end.date().isoformat() if quest.period == "daily" else _week(end), tz)


def _week(moment: datetime) -> str:
    year, week, _ = moment.date().isocalendar()
    return f"{year}-W{week:02d}"


def _hours(until: datetime | None, now: datetime) -> int | None:
    if until is None:
        return None
    return max(0, int((until - now).total_seconds() // 3600))


def quest_cards(
    session: Session,
    tenant_id: int,
    player: Player,
    rules: RuleBook,
    *,
    now: datetime,
    course: str | None = None,
) -> list[QuestCard]:
    """The running quests (current period, progress per objective, hours left) and, before
    them, every earlier completed period not yet claimed.

    Tenant-wide quests always show; a course's quests show in that course (``course``, the
    launch's or the widget's board) and wherever the learner has progress in them, so a
    learner is not shown the quests of every course in the tenant."""
    tz = ZoneInfo(_zone(session, tenant_id, player))
    counters = RuleCounters.from_json(player.rule_state).quests
    claimed = {
        (quest, period)
        for quest, period in session.execute(
            select(QuestClaim.quest_id, QuestClaim.period).where(
                QuestClaim.tenant_id == tenant_id, QuestClaim.player_id == player.id
            )
        )
    }
    waiting: list[QuestCard] = []
    running: list[QuestCard] = []
    for quest in rules.all_quests():
        prefix = f"{quest.id}|"
        if quest.course not in (None, course) and not any(k.startswith(prefix) for k in counters):
            continue
        period = current_period(quest, now, tz.key)
        for key in sorted(k for k in counters if k.startswith(prefix)):
            earlier = key.partition("|")[2]
            entry = counters[key]
            if earlier == period or not entry.get("done") or (quest.id, earlier) in claimed:
                continue
            deadline = _claim_deadline(quest, earlier, tz)
            if deadline is not None and deadline <= now:
                continue
            waiting.append(_card(quest, earlier, False, entry, False, _hours(deadline, now), rules))
        if period is None:
            continue  # a dated quest that has not started or is over
        entry = counters.get(quest_key(quest.id, period)) or {}
        done = (quest.id, period) in claimed
        # Running: the time left to complete it; completed: the time left to claim it.
        until = _claim_deadline if entry.get("done") and not done else _period_end
        running.append(
            _card(quest, period, True, entry, done, _hours(until(quest, period, tz), now), rules)
        )
    return waiting + running


def _card(
    quest: Quest,
    period: str,
    current: bool,
    entry: Mapping[str, Any],
    claimed: bool,
    hours_left: int | None,
    rules: RuleBook,
) -> QuestCard:
    values = list(entry.get("v") or [])
    if len(values) != len(quest.objectives):  # no progress yet, or the rules changed
        values = [0.0] * len(quest.objectives)
    badge = rules.badge(quest.reward.badge) if quest.reward.badge else None
    return QuestCard(
        quest_id=quest.id,
        name=quest.name,
        description=quest.description,
        period=period,
        current=current,
        objectives=tuple(
            ObjectiveView(o.describe(), min(float(v), o.target), o.target)
            for o, v in zip(quest.objectives, values, strict=True)
        ),
        completed=bool(entry.get("done")),
        claimed=claimed,
        hours_left=hours_left,
        reward_xp=quest.reward.xp,
        reward_currency=quest.reward.currency,
        reward_badge=badge.name if badge is not None else None,
    )


def claim_of(
    session: Session, tenant_id: int, player_id: int, quest_id: str, period: str
) -> QuestClaim | None:
    """The stored claim (its reward and explanation), for the page shown after claiming."""
    return session.scalar(
        select(QuestClaim).where(
            QuestClaim.tenant_id == tenant_id,
            QuestClaim.player_id == player_id,
            QuestClaim.quest_id == quest_id,
            QuestClaim.period == period,
        )
    )
