"""identity: SSO configs, player roles, merges, identity audit

Revision ID: 0050
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0050"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Now = sa.func.now()
TZ = sa.DateTime(timezone=True)


def _tenant(unique: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "tenant_id",
        BigId,
        sa.ForeignKey("tenants.id", ondelete="CASCADE"),
        nullable=False,
        unique=unique,
    )


def upgrade() -> None:
    op.create_table(
        "sso_configs",
        sa.Column("id", BigId, primary_key=True),
        _tenant(unique=True),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret_sealed", sa.String(1000), nullable=False),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("allowed_domains", Json, nullable=False),
        sa.Column("link_by_email", sa.Boolean(), nullable=False),
        sa.Column("link_claim", sa.String(100), nullable=True),
        sa.Column("roles_claim", sa.String(100), nullable=False),
        sa.Column("admin_group", sa.String(200), nullable=True),
        sa.Column("api_audience", sa.String(500), nullable=True, unique=True),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.Column("updated_at", TZ, server_default=Now, nullable=False),
    )
    op.create_table(
        "player_roles",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        sa.Column(
            "player_id",
            BigId,
            sa.ForeignKey("players.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
    )
    op.create_index(
        "uq_player_role", "player_roles", ["tenant_id", "player_id", "role", "scope"], unique=True
    )
    op.create_table(
        "player_merges",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        sa.Column("source_player_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("target_player_id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
    )
    op.create_table(
        "identity_audit",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        sa.Column("player_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", Json, nullable=True),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
    )
    op.create_index("ix_identity_audit_tenant", "identity_audit", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_identity_audit_tenant", table_name="identity_audit")
    op.drop_table("identity_audit")
    op.drop_table("player_merges")
    op.drop_index("uq_player_role", table_name="player_roles")
    op.drop_table("player_roles")
    op.drop_table("sso_configs")
