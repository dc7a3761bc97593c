"""identity: SSO sessions (ended by logout, back-channel logout, erasure) and used logout jtis

Revision ID: 0051
Revises: 0100
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0051"
down_revision = "0100"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Now = sa.func.now()
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sso_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "player_id", BigId, sa.ForeignKey("players.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("sub", sa.String(255), nullable=False),
        sa.Column("sid", sa.String(255), nullable=True),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
    )
    op.create_index("ix_sso_sessions_sub", "sso_sessions", ["tenant_id", "issuer", "sub"])
    op.create_index("ix_sso_sessions_sid", "sso_sessions", ["tenant_id", "issuer", "sid"])
    op.create_table(
        "sso_logout_tokens",
        sa.Column("issuer", sa.String(500), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("seen_at", TZ, server_default=Now, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sso_logout_tokens")
    op.drop_index("ix_sso_sessions_sid", table_name="sso_sessions")
    op.drop_index("ix_sso_sessions_sub", table_name="sso_sessions")
    op.drop_table("sso_sessions")
