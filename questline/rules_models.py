"""Tables of the rules engine's economy: the currency ledger, the balance kept in step with it,
and quest reward claims (migration 0010).

The currency ledger is append-only, like the XP ledger: every credit or debit is a row with a
unique idempotency key per tenant and the ``balance_after`` it leaves. ``currency_balances``
holds the same number for a fast read and is changed only in the transaction that appends the
row, with the player row locked; its CHECK makes a negative balance impossible even for a bug.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base, BigId, json_type
from questline.models import TZDateTime


class CurrencyLedger(Base):
    """One credit (earned by a rule, a quest, an admin) or debit (a purchase) of coins."""

    __tablename__ = "currency_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))  # rule, quest, purchase, grant
    ref: Mapped[str] = mapped_column(String(200))  # the rule, quest or shop item
    amount: Mapped[int] = mapped_column(BigInteger)  # positive credit, negative debit
    balance_after: Mapped[int] = mapped_column(BigInteger)
    explanation: Mapped[str] = mapped_column(Text)
    inbox_event_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_currency_ledger_key"),
        CheckConstraint("balance_after >= 0", name="ck_currency_ledger_not_negative"),
        Index("ix_currency_ledger_player", "tenant_id", "player_id", "id"),
    )


class CurrencyBalance(Base):
    """A player's coins: the ``balance_after`` of their newest ledger row."""

    __tablename__ = "currency_balances"

    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        TZDateTime, server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_currency_balance_not_negative"),
        Index("ix_currency_balances_tenant", "tenant_id"),
    )


class QuestClaim(Base):
    """A quest reward claimed for one period; unique, so it is claimed once."""

    __tablename__ = "quest_claims"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    quest_id: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(32))
    reward: Mapped[dict[str, Any]] = mapped_column(json_type())
    explanation: Mapped[str] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("tenant_id", "player_id", "quest_id", "period", name="uq_quest_claim"),
        Index("ix_quest_claims_player", "tenant_id", "player_id"),
    )


__all__ = ["CurrencyBalance", "CurrencyLedger", "QuestClaim"]
