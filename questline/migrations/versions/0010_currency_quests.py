"""rules engine economy: currency ledger and balances, quest claims

Revision ID: 0010
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TZ = sa.DateTime(timezone=True)


def _owner() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("player_id", BigId, nullable=False),
    ]


def _keys() -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], ondelete="CASCADE"),
    ]


def upgrade() -> None:
    op.create_table(
        "currency_ledger",
        sa.Column("id", BigId, nullable=False),
        *_owner(),
        sa.Column("idempotency_key", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("inbox_event_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        *_keys(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_currency_ledger_key"),
        sa.CheckConstraint("balance_after >= 0", name="ck_currency_ledger_not_negative"),
    )
    op.create_index(
        "ix_currency_ledger_player", "currency_ledger", ["tenant_id", "player_id", "id"]
    )
    op.create_table(
        "currency_balances",
        sa.Column("player_id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        *_keys(),
        sa.PrimaryKeyConstraint("player_id"),
        sa.CheckConstraint("balance >= 0", name="ck_currency_balance_not_negative"),
    )
    op.create_index("ix_currency_balances_tenant", "currency_balances", ["tenant_id"])
    op.create_table(
        "quest_claims",
        sa.Column("id", BigId, nullable=False),
        *_owner(),
        sa.Column("quest_id", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("reward", Json, nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("claimed_at", TZ, server_default=sa.func.now(), nullable=False),
        *_keys(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "player_id", "quest_id", "period", name="uq_quest_claim"),
    )
    op.create_index("ix_quest_claims_player", "quest_claims", ["tenant_id", "player_id"])


def downgrade() -> None:
    op.drop_index("ix_quest_claims_player", table_name="quest_claims")
    op.drop_table("quest_claims")
    op.drop_index("ix_currency_balances_tenant", table_name="currency_balances")
    op.drop_table("currency_balances")
    op.drop_index("ix_currency_ledger_player", table_name="currency_ledger")
    op.drop_table("currency_ledger")
