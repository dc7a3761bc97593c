"""Currency: the append-only coin ledger with ``balance_after``, credits and shop purchases.

Every change happens with the player's row locked (``SELECT ... FOR UPDATE``, the same lock the
worker takes for its batch), so the balance read, the ledger row and the new balance are one
serial step: two concurrent purchases cannot both spend the same coins, and the CHECK
constraints on both tables stop a negative balance even if a caller forgot the lock. Purchases
are idempotent by the client's request id: the same id returns the first purchase again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.shop import STREAK_FREEZE, ShopItem, check_purchase
from questline.inventory import add_item, lock_player
from questline.rules_models import CurrencyBalance, CurrencyLedger

REQUEST_ID_MAX = 200


@dataclass(frozen=True)
class Credit:
    """A credit to apply: ``amount`` coins (> 0) to ``player_id`` under a unique key."""

    player_id: int
    idempotency_key: str
    kind: str
    ref: str
    amount: int
    explanation: str
    inbox_event_id: int | None = None


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


def balances(session: Session, player_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(player_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(CurrencyBalance.player_id, CurrencyBalance.balance).where(
            CurrencyBalance.player_id.in_(ids)
        )
    )
    return {pid: balance for pid, balance in rows}


def _save_balances(session: Session, tenant_id: int, new: dict[int, int]) -> None:
    if not new:
        return
    insert = _insert(session)
    stmt = insert(CurrencyBalance)
    stmt = stmt.on_conflict_do_update(
        index_elements=["player_id"], set_={"balance": stmt.excluded.balance}
    )
    session.execute(
        stmt,
        [
            {"player_id": pid, "tenant_id": tenant_id, "balance": b}
            for pid, b in sorted(new.items())
        ],
    )


def apply_credits(session: Session, tenant_id: int, credits: list[Credit]) -> int:
    """Append credits in order, skipping keys already in the ledger; returns how many were new.

    The caller holds the players' row locks (the worker's batch does), so reading the current
    balances and the existing keys first is safe, and each row's ``balance_after`` is exact.
    """
    if not credits:
        return 0
    keys = [c.idempotency_key for c in credits]
    existing: set[str] = set()
    for start in range(0, len(keys), 1000):
        existing.update(
            session.scalars(
                select(CurrencyLedger.idempotency_key).where(
                    CurrencyLedger.tenant_id == tenant_id,
                    CurrencyLedger.idempotency_key.in_(keys[start : start + 1000]),
                )
            )
        )
    current = balances(session, (c.player_id for c in credits))
    rows: list[dict[str, Any]] = []
    touched: dict[int, int] = {}
    for credit in credits:
        if credit.idempotency_key in existing or credit.amount <= 0:
            continue
        existing.add(credit.idempotency_key)
        after = touched.get(credit.player_id, current.get(credit.player_id, 0)) + credit.amount
        touched[credit.player_id] = after
        rows.append(
            {
                "tenant_id": tenant_id,
                "player_id": credit.player_id,
                "idempotency_key": credit.idempotency_key,
                "kind": credit.kind,
                "ref": credit.ref,
                "amount": credit.amount,
                "balance_after": after,
                "explanation": credit.explanation,
                "inbox_event_id": credit.inbox_event_id,
            }
        )
    if rows:
        session.execute(_insert(session)(CurrencyLedger), rows)
        _save_balances(session, tenant_id, touched)
    return len(rows)


def entry_json(row: CurrencyLedger) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "ref": row.ref,
        "amount": row.amount,
        "balance_after": row.balance_after,
        "explanation": row.explanation,
        "at": row.created_at.isoformat() if row.created_at else None,
    }


def wallet(session: Session, tenant_id: int, player_id: int, *, limit: int) -> dict[str, Any]:
    """The balance and the newest ledger rows of a player."""
    rows = session.scalars(
        select(CurrencyLedger)
        .where(CurrencyLedger.tenant_id == tenant_id, CurrencyLedger.player_id == player_id)
        .order_by(CurrencyLedger.id.desc())
        .limit(limit)
    )
    return {
        "player_id": player_id,
        "balance": balances(session, [player_id]).get(player_id, 0),
        "entries": [entry_json(row) for row in rows],
    }


class PurchaseConflict(ValueError):
    """The request id was used before for another item."""


def purchase_key(player_id: int, request_id: str) -> str:
    return f"purchase|{player_id}|{request_id}"


def purchase(
    session: Session,
    tenant_id: int,
    player_id: int,
    item: ShopItem,
    request_id: str,
    *,
    max_freezes: int,
    now: datetime,
) -> tuple[dict[str, Any], bool] | None:
    """Buy ``item`` once for ``request_id``: (the purchase, True when new), or None when the
    player is not in this tenant. Raises ``PurchaseRefused`` (engine/shop.py) when the balance
    or a holding limit forbids it and ``PurchaseConflict`` when the request id was used for
    another item. Runs inside the caller's transaction."""
    if not lock_player(session, tenant_id, player_id):
        return None
    key = purchase_key(player_id, request_id)
    done = session.scalar(
        select(CurrencyLedger).where(
            CurrencyLedger.tenant_id == tenant_id, CurrencyLedger.idempotency_key == key
        )
    )
    if done is not None:
        if done.ref != item.id:
            raise PurchaseConflict(
                f"request id {request_id!r} was already used to buy {done.ref!r}"
            )
        return _purchase_json(done, item, session, tenant_id, player_id), False
    balance = balances(session, [player_id]).get(player_id, 0)
    held = _held(session, player_id, item.item)
    after = check_purchase(item, balance, held, max_freezes)
    row = CurrencyLedger(
        tenant_id=tenant_id,
        player_id=player_id,
        idempotency_key=key,
        kind="purchase",
        ref=item.id,
        amount=-item.price,
        balance_after=after,
        explanation=(
            f"bought {item.name} (`{item.id}`, {item.quantity} x {item.item}) for "
            f"{item.price} coins"
        ),
        created_at=now,
    )
    session.add(row)
    _save_balances(session, tenant_id, {player_id: after})
    add_item(session, tenant_id, player_id, item.item, item.quantity)
    session.flush()
    return _purchase_json(row, item, session, tenant_id, player_id), True


def _held(session: Session, player_id: int, item: str) -> int:
    from questline.models import PlayerInventory

    found = session.scalar(
        select(PlayerInventory.quantity).where(
            PlayerInventory.player_id == player_id, PlayerInventory.item == item
        )
    )
    return int(found or 0)


def _purchase_json(
    row: CurrencyLedger, item: ShopItem, session: Session, tenant_id: int, player_id: int
) -> dict[str, Any]:
    return {
        "player_id": player_id,
        "item": item.id,
        "granted": {"item": item.item, "quantity": item.quantity},
        "price": item.price,
        "balance_after": row.balance_after,
        "held": _held(session, player_id, item.item),
        "ledger_entry": entry_json(row),
    }


def grant(
    session: Session,
    tenant_id: int,
    player_id: int,
    amount: int,
    *,
    request_id: str,
    reason: str,
    actor: str,
) -> dict[str, Any] | None:
    """An admin credit of ``amount`` coins, idempotent by ``request_id``; None when the player is
    not in this tenant."""
    if not lock_player(session, tenant_id, player_id):
        return None
    apply_credits(
        session,
        tenant_id,
        [
            Credit(
                player_id,
                f"grant|{player_id}|{request_id}",
                "grant",
                actor[:200],
                amount,
                f"granted {amount} coins by {actor}: {reason}",
            )
        ],
    )
    session.flush()
    return {"player_id": player_id, "balance": balances(session, [player_id]).get(player_id, 0)}


def ledger_totals(session: Session, tenant_id: int) -> dict[int, tuple[int, int]]:
    """Per player: (sum of the ledger, stored balance); equal when the books are right."""
    sums: dict[int, int] = defaultdict(int)
    for pid, amount in session.execute(
        select(CurrencyLedger.player_id, CurrencyLedger.amount).where(
            CurrencyLedger.tenant_id == tenant_id
        )
    ):
        sums[pid] += amount
    stored = dict(
        session.execute(
            select(CurrencyBalance.player_id, CurrencyBalance.balance).where(
                CurrencyBalance.tenant_id == tenant_id
            )
        ).all()
    )
    return {pid: (sums.get(pid, 0), stored.get(pid, 0)) for pid in set(sums) | set(stored)}


__all__ = [
    "STREAK_FREEZE",
    "Credit",
    "PurchaseConflict",
    "apply_credits",
    "balances",
    "grant",
    "ledger_totals",
    "purchase",
    "wallet",
]
