"""Tenant-scoped reads and admin actions on awards: a player's badges, revocation with a reason,
and the activity feed (XP ledger rows and badges, each with its explanation)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from questline.models import Player, PlayerBadge, XpLedger


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def badge_json(row: PlayerBadge) -> dict[str, Any]:
    return {
        "award_id": row.id,
        "badge_id": row.badge_id,
        "name": row.name,
        "tier": row.tier,
        "tier_name": row.tier_name,
        "course": None if row.scope == "*" else row.scope,
        "awarded_at": _iso(row.awarded_at),
        "expires_at": _iso(row.expires_at),
        "explanation": row.explanation,
        "revoked_at": _iso(row.revoked_at),
        "revoked_reason": row.revoked_reason,
    }


def player_badges(
    session: Session, tenant_id: int, player_id: int, *, now: datetime, everything: bool = False
) -> list[dict[str, Any]]:
    """The player's badges, oldest first: by default only those in force (not revoked, not
    expired at ``now``); ``everything`` adds revoked and expired ones."""
    stmt = select(PlayerBadge).where(
        PlayerBadge.tenant_id == tenant_id, PlayerBadge.player_id == player_id
    )
    if not everything:
        stmt = stmt.where(
            PlayerBadge.revoked_at.is_(None),
            PlayerBadge.expires_at.is_(None) | (PlayerBadge.expires_at > now),
        )
    rows = session.scalars(stmt.order_by(PlayerBadge.awarded_at, PlayerBadge.id))
    return [badge_json(row) for row in rows]


def revoke_badge(
    session: Session,
    tenant_id: int,
    player_id: int,
    award_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Revoke one award (idempotent: a second revocation keeps the first reason); None when the
    award is not this player's in this tenant."""
    session.execute(
        update(PlayerBadge)
        .where(
            PlayerBadge.tenant_id == tenant_id,
            PlayerBadge.player_id == player_id,
            PlayerBadge.id == award_id,
            PlayerBadge.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_reason=reason, revoked_by=actor)
    )
    row = session.scalar(
        select(PlayerBadge).where(
            PlayerBadge.tenant_id == tenant_id,
            PlayerBadge.player_id == player_id,
            PlayerBadge.id == award_id,
        )
    )
    return badge_json(row) if row is not None else None


def activity(
    session: Session, tenant_id: int, player_id: int, *, limit: int
) -> list[dict[str, Any]]:
    """The newest XP awards, badges and coin movements of a player, each with its explanation."""
    from questline.rules_models import CurrencyLedger

    xp_rows = session.execute(
        select(
            XpLedger.rule_id,
            XpLedger.amount,
            XpLedger.course,
            XpLedger.explanation,
            XpLedger.occurred_at,
        )
        .where(XpLedger.tenant_id == tenant_id, XpLedger.player_id == player_id)
        .order_by(XpLedger.occurred_at.desc(), XpLedger.id.desc())
        .limit(limit)
    )
    items: list[dict[str, Any]] = [
        {
            "kind": "xp",
            "rule_id": rule_id,
            "amount": amount,
            "course": course,
            "explanation": text,
            "at": _iso(at),
        }
        for rule_id, amount, course, text, at in xp_rows
    ]
    badge_rows = session.scalars(
        select(PlayerBadge)
        .where(PlayerBadge.tenant_id == tenant_id, PlayerBadge.player_id == player_id)
        .order_by(PlayerBadge.awarded_at.desc(), PlayerBadge.id.desc())
        .limit(limit)
    )
    items += [
        {"kind": "badge", **badge_json(row), "at": _iso(row.awarded_at)} for row in badge_rows
    ]
    coin_rows = session.scalars(
        select(CurrencyLedger)
        .where(CurrencyLedger.tenant_id == tenant_id, CurrencyLedger.player_id == player_id)
        .order_by(CurrencyLedger.id.desc())
        .limit(limit)
    )
    items += [
        {
            "kind": "coins",
            "ref": row.ref,
            "amount": row.amount,
            "balance_after": row.balance_after,
            "explanation": row.explanation,
            "at": _iso(row.created_at),
        }
        for row in coin_rows
    ]
    items.sort(key=lambda item: item["at"] or "", reverse=True)
    return items[:limit]


def player_exists(session: Session, tenant_id: int, player_id: int) -> bool:
    return (
        session.scalar(
            select(Player.id).where(Player.tenant_id == tenant_id, Player.id == player_id)
        )
        is not None
    )
