"""widgets: a learner's nudge preference

Revision ID: 0060
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0060"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "widget_preferences",
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "player_id", BigId, sa.ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("nudges_off", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_table("widget_preferences")
