"""lti: registrations, deployments, tool keys, login states, nonces, courses, launches

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Now = sa.func.now()
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lti_tool_keys",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kid", sa.String(100), nullable=False),
        sa.Column("private_key_encrypted", sa.Text(), nullable=False),
        sa.Column("public_jwk", Json, nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.Column("retired_at", TZ, nullable=True),
        sa.Column("publish_until", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kid"),
    )
    op.create_table(
        "lti_registrations",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("auth_login_url", sa.String(1024), nullable=False),
        sa.Column("auth_token_url", sa.String(1024), nullable=False),
        sa.Column("auth_audience", sa.String(1024), nullable=True),
        sa.Column("key_set_url", sa.String(1024), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer", "client_id", name="uq_lti_registration_client"),
    )
    op.create_index("ix_lti_registrations_tenant_id", "lti_registrations", ["tenant_id"])
    op.create_table(
        "lti_deployments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("registration_id", BigId, nullable=False),
        sa.Column("deployment_id", sa.String(255), nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["lti_registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registration_id", "deployment_id", name="uq_lti_deployment"),
    )
    op.create_table(
        "lti_login_states",
        sa.Column("state", sa.String(100), nullable=False),
        sa.Column("registration_id", BigId, nullable=False),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["registration_id"], ["lti_registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("state"),
    )
    op.create_index("ix_lti_login_states_registration_id", "lti_login_states", ["registration_id"])
    op.create_table(
        "lti_used_nonces",
        sa.Column("registration_id", BigId, nullable=False),
        sa.Column("nonce", sa.String(255), nullable=False),
        sa.Column("seen_at", TZ, server_default=Now, nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["lti_registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registration_id", "nonce"),
    )
    op.create_table(
        "lti_courses",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("registration_id", BigId, nullable=False),
        sa.Column("context_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(512), nullable=True),
        sa.Column("deployment_id", sa.String(255), nullable=True),
        sa.Column("nrps_url", sa.String(1024), nullable=True),
        sa.Column("ags_lineitems_url", sa.String(1024), nullable=True),
        sa.Column("ags_scopes", Json, nullable=True),
        sa.Column("ags_enabled", sa.Boolean(), nullable=False),
        sa.Column("ags_goal_xp", sa.Integer(), nullable=True),
        sa.Column("roster_synced_at", TZ, nullable=True),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["registration_id"], ["lti_registrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registration_id", "context_id", name="uq_lti_course"),
    )
    op.create_index("ix_lti_courses_tenant_id", "lti_courses", ["tenant_id"])
    op.create_table(
        "lti_course_members",
        sa.Column("course_id", BigId, nullable=False),
        sa.Column("player_id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("user_sub", sa.String(255), nullable=False),
        sa.Column("roles", Json, nullable=False),
        sa.Column("locale", sa.String(35), nullable=True),
        sa.Column("updated_at", TZ, server_default=Now, nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["lti_courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("course_id", "player_id"),
    )
    op.create_index("ix_lti_course_members_tenant_id", "lti_course_members", ["tenant_id"])
    op.create_table(
        "lti_launches",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("registration_id", BigId, nullable=False),
        sa.Column("player_id", BigId, nullable=False),
        sa.Column("course_id", BigId, nullable=True),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("claims", Json, nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["registration_id"], ["lti_registrations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["lti_courses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lti_launches_tenant_id", "lti_launches", ["tenant_id"])
    op.create_table(
        "lti_line_items",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("course_id", BigId, nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        sa.Column("lineitem_url", sa.String(1024), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["lti_courses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("course_id", "tag", name="uq_lti_line_item"),
    )
    op.create_index("ix_lti_line_items_tenant_id", "lti_line_items", ["tenant_id"])
    op.create_table(
        "lti_score_posts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant_id", BigId, nullable=False),
        sa.Column("course_id", BigId, nullable=False),
        sa.Column("player_id", BigId, nullable=False),
        sa.Column("user_sub", sa.String(255), nullable=False),
        sa.Column("score_given", sa.Float(), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.Column("sent_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["lti_courses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["player_id"], ["players.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lti_score_posts_tenant_id", "lti_score_posts", ["tenant_id"])
    op.create_index("ix_lti_score_posts_status", "lti_score_posts", ["status"])


def downgrade() -> None:
    for table in (
        "lti_score_posts",
        "lti_line_items",
        "lti_launches",
        "lti_course_members",
        "lti_courses",
        "lti_used_nonces",
        "lti_login_states",
        "lti_deployments",
        "lti_registrations",
        "lti_tool_keys",
    ):
        op.drop_table(table)
