"""leagues: LMS groups a player belongs to (learned from events' context.group), for group boards

Revision ID: 0021
Revises: 0100
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0100"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "player_groups",
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("group_id", sa.String(255), primary_key=True),
        sa.Column(
            "player_id", BigId, sa.ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "joined_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_player_groups_player", "player_groups", ["tenant_id", "player_id"])


def downgrade() -> None:
    op.drop_index("ix_player_groups_player", table_name="player_groups")
    op.drop_table("player_groups")
