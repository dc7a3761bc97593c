"""A player's inventory (streak freezes, shop rewards): reads and admin grants.

Every change locks the player row first (``SELECT ... FOR UPDATE``), the same lock the worker
takes for its batch, so a grant, a purchase and a streak freeze used by the engine are
serialised by PostgreSQL and a quantity can never be lost or go negative.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from questline.models import Player, PlayerInventory

ITEM_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
MAX_QUANTITY = 1_000_000


def lock_player(session: Session, tenant_id: int, player_id: int) -> bool:
    """Lock the player row (PostgreSQL); False when the player is not in this tenant."""
    stmt = select(Player.id).where(Player.tenant_id == tenant_id, Player.id == player_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt) is not None


def inventory(session: Session, tenant_id: int, player_id: int) -> dict[str, int]:
    rows = session.execute(
        select(PlayerInventory.item, PlayerInventory.quantity)
        .where(PlayerInventory.tenant_id == tenant_id, PlayerInventory.player_id == player_id)
        .order_by(PlayerInventory.item)
    )
    return {item: quantity for item, quantity in rows if quantity}


def add_item(session: Session, tenant_id: int, player_id: int, item: str, quantity: int) -> int:
    """Add ``quantity`` (may be negative to take away) inside the caller's transaction, with the
    player row already locked; returns the new quantity. Raises ValueError below zero."""
    row = session.get(PlayerInventory, (player_id, item))
    current = row.quantity if row is not None else 0
    if current + quantity < 0:
        raise ValueError(f"the player has {current} {item}, not {-quantity}")
    if row is None:
        session.add(
            PlayerInventory(tenant_id=tenant_id, player_id=player_id, item=item, quantity=quantity)
        )
    else:
        row.quantity = current + quantity
    session.flush()
    return current + quantity


def grant_json(body: Any) -> tuple[str, int]:
    """Validate ``{"item": ..., "quantity": n}`` from an admin grant; raise ValueError."""
    if not isinstance(body, dict):
        raise ValueError("send {item, quantity} as JSON")
    item, quantity = body.get("item"), body.get("quantity", 1)
    if not isinstance(item, str) or not ITEM_PATTERN.fullmatch(item):
        raise ValueError("item must be 1-100 lowercase letters, digits or . _ -")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 1000:
        raise ValueError("quantity must be an integer from 1 to 1000")
    return item, quantity
