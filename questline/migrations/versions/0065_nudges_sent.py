"""widgets: the nudges sent by the scheduler, at most one per learner per local day

Revision ID: 0065
Revises: 0100
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0065"
down_revision = "0100"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "nudges_sent",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "player_id", BigId, sa.ForeignKey("players.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", Json, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.UniqueConstraint("tenant_id", "player_id", "day", name="uq_nudges_sent_player_day"),
    )


def downgrade() -> None:
    op.drop_table("nudges_sent")
