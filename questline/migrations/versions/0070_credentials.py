"""credentials: tenant Ed25519 issuer keys and issued Open Badges credentials (issue 9)

Revision ID: 0070
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0070"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ob_issuer_keys",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("multikey", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("private_key_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("retired_at", TZ, nullable=True),
        sa.UniqueConstraint("tenant_id", "multikey", name="uq_ob_issuer_key"),
    )
    op.create_table(
        "ob_credentials",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "award_id",
            BigId,
            sa.ForeignKey("player_badges.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("document", Json, nullable=False),
        sa.Column("jwt", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("tenant_id", "award_id", name="uq_ob_credential_award"),
        sa.UniqueConstraint("tenant_id", "status_index", name="uq_ob_credential_status_index"),
    )


def downgrade() -> None:
    op.drop_table("ob_credentials")
    op.drop_table("ob_issuer_keys")
