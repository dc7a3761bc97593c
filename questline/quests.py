"""Quests for players: live progress and claiming a completed quest's reward, once.

Progress is written by the engine (engine/quests.py) into ``players.rule_state`` as events are
applied; this module reads it for the API and turns a completed quest into its reward. A claim
locks the player row (the worker's lock), inserts a ``quest_claims`` row that is unique per
(player, quest, period), and writes the reward in the same transaction: XP to the XP ledger,
coins to the currency ledger, a badge to ``player_badges``. Two concurrent claims therefore give
one reward and one ``already_claimed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.counters import RuleCounters
from engine.quests import Quest, quest_key
from engine.rules import RuleBook
from engine.streaks import local_day
from questline.currency import Credit, apply_credits
from questline.inventory import lock_player
from questline.models import Player, PlayerBadge, PlayerCourseStats, Tenant, XpLedger
from questline.rules_models import QuestClaim

BoardWrites = dict[tuple[int, str], dict[int, int]]


class ClaimRefused(ValueError):
    """A claim that cannot be granted; ``code`` is ``not_completed`` or ``already_claimed``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Player:
    xp: int
    level: int
    zone: str
    counters: RuleCounters


def _player(session: Session, tenant_id: int, player_id: int) -> _Player | None:
    row = session.execute(
        select(Player.xp, Player.level, Player.timezone, Player.rule_state, Tenant.timezone)
        .join(Tenant, Tenant.id == Player.tenant_id)
        .where(Player.tenant_id == tenant_id, Player.id == player_id)
    ).first()
    if row is None:
        return None
    xp, level, zone, state, tenant_zone = row
    return _Player(xp, level, zone or tenant_zone or "UTC", RuleCounters.from_json(state))


def current_period(quest: Quest, now: datetime, zone: str) -> str | None:
    """The period a quest is in at ``now`` for a player in ``zone`` (None: a dated quest that
    has not started or is over)."""
    return quest.period_of(now, local_day(now, zone))


def _claimed(session: Session, tenant_id: int, player_id: int) -> set[tuple[str, str]]:
    rows = session.execute(
        select(QuestClaim.quest_id, QuestClaim.period).where(
            QuestClaim.tenant_id == tenant_id, QuestClaim.player_id == player_id
        )
    )
    return {(quest, period) for quest, period in rows}


def quest_status(
    session: Session, tenant_id: int, player_id: int, rules: RuleBook, now: datetime
) -> list[dict[str, Any]] | None:
    """Every quest with the player's live progress in its current period and the claimable
    completed periods; None when the player is not in this tenant."""
    player = _player(session, tenant_id, player_id)
    if player is None:
        return None
    claimed = _claimed(session, tenant_id, player_id)
    out = []
    for quest in rules.all_quests():
        period = current_period(quest, now, player.zone)
        entry = player.counters.quests.get(quest_key(quest.id, period)) if period else None
        values = list((entry or {}).get("v") or [0.0] * len(quest.objectives))
        if len(values) != len(quest.objectives):
            values = [0.0] * len(quest.objectives)
        prefix = f"{quest.id}|"
        claimable = sorted(
            key.partition("|")[2]
            for key, e in player.counters.quests.items()
            if key.startswith(prefix)
            and e.get("done")
            and (quest.id, key.partition("|")[2]) not in claimed
        )
        out.append(
            {
                "quest_id": quest.id,
                "name": quest.name,
                "description": quest.description,
                "period": quest.period,
                "course": quest.course,
                "current_period": period,
                "from": quest.starts.isoformat() if quest.starts else None,
                "until": quest.ends.isoformat() if quest.ends else None,
                "objectives": [
                    {
                        "kind": o.kind,
                        "describe": o.describe(),
                        "target": o.target,
                        "progress": min(float(v), o.target),
                    }
                    for o, v in zip(quest.objectives, values, strict=True)
                ],
                "completed": bool((entry or {}).get("done")),
                "claimed": period is not None and (quest.id, period) in claimed,
                "claimable_periods": claimable,
                "reward": {
                    "xp": quest.reward.xp,
                    "currency": quest.reward.currency,
                    "badge": quest.reward.badge,
                },
            }
        )
    return out


def claim(
    session: Session,
    tenant_id: int,
    player_id: int,
    quest_id: str,
    period: str | None,
    rules: RuleBook,
    now: datetime,
) -> tuple[dict[str, Any], BoardWrites] | None:
    """Grant a completed quest's reward once. ``period`` defaults to the current one. Returns
    the claim and the leaderboard totals to write after commit; None when the player is not in
    this tenant; raises ``LookupError`` for an unknown quest and ``ClaimRefused``."""
    if not lock_player(session, tenant_id, player_id):
        return None
    quest = next((q for q in rules.all_quests() if q.id == quest_id), None)
    if quest is None:
        raise LookupError(f"no quest {quest_id!r} in the active rules")
    player = _player(session, tenant_id, player_id)
    assert player is not None
    period = period or current_period(quest, now, player.zone)
    if period is None:
        raise ClaimRefused(f"quest {quest_id!r} is not running now", "not_completed")
    entry = player.counters.quests.get(quest_key(quest.id, period))
    if not entry or not entry.get("done"):
        raise ClaimRefused(f"quest {quest_id!r} is not completed for {period}", "not_completed")
    exists = session.scalar(
        select(QuestClaim.id).where(
            QuestClaim.tenant_id == tenant_id,
            QuestClaim.player_id == player_id,
            QuestClaim.quest_id == quest.id,
            QuestClaim.period == period,
        )
    )
    if exists is not None:
        raise ClaimRefused(
            f"quest {quest_id!r} was already claimed for {period}", "already_claimed"
        )
    reward = quest.reward
    text = f"quest `{quest.id}` {quest.name} claimed for {period}"
    parts = []
    key = f"quest|{player_id}|{quest.id}|{period}"
    boards: BoardWrites = {}
    if reward.xp:
        parts.append(f"+{reward.xp} XP")
        boards = _add_xp(
            session, tenant_id, player_id, player, quest, reward.xp, key, text, rules, now
        )
    if reward.currency:
        parts.append(f"+{reward.currency} coins")
        apply_credits(
            session,
            tenant_id,
            [
                Credit(
                    player_id,
                    key,
                    "quest",
                    quest.id,
                    reward.currency,
                    f"{text}: +{reward.currency} coins",
                )
            ],
        )
    if reward.badge:
        parts.append(
            _grant_badge(session, tenant_id, player_id, reward.badge, rules, key, text, now)
        )
    explanation = f"{text}: {', '.join(parts) or 'no reward'}"
    session.add(
        QuestClaim(
            tenant_id=tenant_id,
            player_id=player_id,
            quest_id=quest.id,
            period=period,
            reward={"xp": reward.xp, "currency": reward.currency, "badge": reward.badge},
            explanation=explanation,
            claimed_at=now,
        )
    )
    session.flush()
    return {
        "player_id": player_id,
        "quest_id": quest.id,
        "period": period,
        "reward": {"xp": reward.xp, "currency": reward.currency, "badge": reward.badge},
        "explanation": explanation,
    }, boards


def _add_xp(
    session: Session,
    tenant_id: int,
    player_id: int,
    player: _Player,
    quest: Quest,
    amount: int,
    key: str,
    text: str,
    rules: RuleBook,
    now: datetime,
) -> BoardWrites:
    session.add(
        XpLedger(
            tenant_id=tenant_id,
            player_id=player_id,
            idempotency_key=key,
            rule_id=f"quest:{quest.id}",
            amount=amount,
            course=quest.course,
            explanation=f"{text}: +{amount} XP",
            occurred_at=now,
        )
    )
    xp = player.xp + amount
    level = max(player.level, rules.levels.level_for(xp))
    session.execute(update(Player).where(Player.id == player_id).values(xp=xp, level=level))
    boards: BoardWrites = {(tenant_id, "tenant"): {player_id: xp}}
    if quest.course is not None:
        from questline.leaderboards import course_board

        stats = session.get(PlayerCourseStats, (tenant_id, quest.course, player_id))
        if stats is None:
            stats = PlayerCourseStats(
                tenant_id=tenant_id, course=quest.course, player_id=player_id, xp=0
            )
            session.add(stats)
        stats.xp = (stats.xp or 0) + amount
        boards[(tenant_id, course_board(quest.course))] = {player_id: stats.xp}
    return boards


def _grant_badge(
    session: Session,
    tenant_id: int,
    player_id: int,
    badge_id: str,
    rules: RuleBook,
    key: str,
    text: str,
    now: datetime,
) -> str:
    badge = rules.badge(badge_id)
    if badge is None:
        return f"badge {badge_id} not granted (it is not in the active rules)"
    held = session.scalar(
        select(PlayerBadge.id).where(
            PlayerBadge.tenant_id == tenant_id,
            PlayerBadge.player_id == player_id,
            PlayerBadge.badge_id == badge_id,
            PlayerBadge.revoked_at.is_(None),
            PlayerBadge.expires_at.is_(None) | (PlayerBadge.expires_at > now),
        )
    )
    if held is not None:
        return f"badge {badge_id} already held"
    tier = badge.tiers[0]
    session.add(
        PlayerBadge(
            tenant_id=tenant_id,
            player_id=player_id,
            idempotency_key=f"{key}|badge",
            badge_id=badge.id,
            name=badge.name,
            tier=0,
            tier_name=tier.name,
            scope="*",
            explanation=f"{text}: badge `{badge.id}` {badge.name}",
            awarded_at=now,
            expires_at=None,
        )
    )
    return f"badge {badge.name}"
