"""Privacy: export everything we hold about a player, and erase the personal part of it.

Erasure keeps the anonymised aggregates (XP, level, ledger amounts, badges, course XP) so boards
and league standings stay consistent, and removes what identifies the person: name, email,
time zone, every identity (actor ids, emails, SSO subjects, employee ids), roles, and the raw
bodies and actor details of their inbox events. The player keeps one synthetic identity
``("actor", "erased:<id>")`` and their inbox events are rewritten to that actor, so a
retroactive replay still scores the same anonymous player. Events that arrive later under the
person's old ids create a new player: the source system still knows them, Questline does not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from identity.linking import audit, identities_json
from identity.models import IdentityAudit, PlayerRole
from questline.errors import NotFound
from questline.models import (
    InboxEvent,
    Player,
    PlayerBadge,
    PlayerCourseStats,
    PlayerIdentity,
    PlayerInventory,
    XpLedger,
)

ERASED_NAME = "Erased player"


def _player(session: Session, tenant_id: int, player_id: int, *, lock: bool = False) -> Player:
    query = select(Player).where(Player.tenant_id == tenant_id, Player.id == player_id)
    player = session.scalar(query.with_for_update() if lock else query)
    if player is None:
        raise NotFound(f"no player {player_id} in this tenant")
    return player


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_player(session: Session, tenant_id: int, player_id: int) -> dict[str, Any]:
    """Everything stored about one player, as JSON-safe data (a subject access request)."""
    p = _player(session, tenant_id, player_id)
    where = {"tenant_id": tenant_id, "player_id": player_id}
    return {
        "exported_at": datetime.now(UTC).isoformat(),
        "player": {
            "id": p.id,
            "display_name": p.display_name,
            "email": p.email,
            "timezone": p.timezone,
            "xp": p.xp,
            "level": p.level,
            "streak_current": p.streak_current,
            "streak_longest": p.streak_longest,
            "last_active_day": p.last_active_day,
            "created_at": _iso(p.created_at),
        },
        "identities": identities_json(session, tenant_id, player_id),
        "roles": [
            {"role": r.role, "scope": r.scope}
            for r in session.scalars(select(PlayerRole).filter_by(**where))
        ],
        "ledger": [
            {
                "rule": x.rule_id,
                "amount": x.amount,
                "course": x.course,
                "explanation": x.explanation,
                "occurred_at": _iso(x.occurred_at),
            }
            for x in session.scalars(select(XpLedger).filter_by(**where).order_by(XpLedger.id))
        ],
        "badges": [
            {
                "badge": b.badge_id,
                "name": b.name,
                "tier": b.tier_name,
                "awarded_at": _iso(b.awarded_at),
            }
            for b in session.scalars(
                select(PlayerBadge).filter_by(**where).order_by(PlayerBadge.id)
            )
        ],
        "course_xp": {
            c.course: c.xp for c in session.scalars(select(PlayerCourseStats).filter_by(**where))
        },
        "inventory": {
            i.item: i.quantity for i in session.scalars(select(PlayerInventory).filter_by(**where))
        },
        "events": [
            {
                "id": e.id,
                "source": e.source,
                "type": e.event_type,
                "occurred_at": _iso(e.occurred_at),
                "canonical": e.canonical,
            }
            for e in session.scalars(select(InboxEvent).filter_by(**where).order_by(InboxEvent.id))
        ],
        "audit": [
            {"action": a.action, "actor": a.actor, "at": _iso(a.created_at), "detail": a.detail}
            for a in session.scalars(
                select(IdentityAudit).filter_by(**where).order_by(IdentityAudit.id)
            )
        ],
    }


def erase_player(session: Session, tenant_id: int, player_id: int, actor: str) -> dict[str, int]:
    """Erase the player's personal data in this transaction; returns counts of what changed."""
    player = _player(session, tenant_id, player_id, lock=True)
    player.display_name = f"{ERASED_NAME} {player_id}"
    player.email = None
    player.timezone = None
    removed = session.execute(
        delete(PlayerIdentity).where(
            PlayerIdentity.tenant_id == tenant_id, PlayerIdentity.player_id == player_id
        )
    )
    session.execute(
        delete(PlayerRole).where(
            PlayerRole.tenant_id == tenant_id, PlayerRole.player_id == player_id
        )
    )
    pseudonym = f"erased:{player_id}"
    session.add(
        PlayerIdentity(tenant_id=tenant_id, player_id=player_id, kind="actor", value=pseudonym)
    )
    events = 0
    for row in session.scalars(
        select(InboxEvent).where(
            InboxEvent.tenant_id == tenant_id, InboxEvent.player_id == player_id
        )
    ):
        canonical = dict(row.canonical or {})
        canonical["actor"] = {"id": pseudonym}
        row.canonical = canonical
        row.raw = ""
        events += 1
    for entry in session.scalars(
        select(IdentityAudit).where(
            IdentityAudit.tenant_id == tenant_id, IdentityAudit.player_id == player_id
        )
    ):
        entry.actor = entry.actor if not entry.actor.startswith("player:") else "player"
    result = {
        "identities_removed": int(getattr(removed, "rowcount", 0) or 0),
        "events_redacted": events,
    }
    audit(session, tenant_id, "erase", actor, player_id, **result)
    session.flush()
    return result
