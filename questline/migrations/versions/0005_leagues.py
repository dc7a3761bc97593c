"""leagues: configs, weeks, cohorts, memberships, player tiers, results, finished facts, prefs

Revision ID: 0005
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Now = sa.func.now()
TZ = sa.DateTime(timezone=True)


def _tenant() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "tenant_id", BigId, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )


def _league() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "league_id", BigId, sa.ForeignKey("leagues.id", ondelete="CASCADE"), nullable=False
    )


def _player(primary: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "player_id",
        BigId,
        sa.ForeignKey("players.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary,
    )


def upgrade() -> None:
    op.create_table(
        "leagues",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tiers", Json, nullable=False),
        sa.Column("cohort_size", sa.Integer(), nullable=False),
        sa.Column("promote", Json, nullable=False),
        sa.Column("demote", Json, nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.UniqueConstraint("tenant_id", "scope", name="uq_league_scope"),
    )
    op.create_table(
        "league_weeks",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        _league(),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.UniqueConstraint("league_id", "week", name="uq_league_week"),
    )
    op.create_index("ix_league_weeks_status", "league_weeks", ["status", "ends_at"])
    op.create_table(
        "league_cohorts",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        _league(),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
    )
    op.create_index(
        "ix_league_cohorts_open", "league_cohorts", ["league_id", "week", "tier", "size"]
    )
    op.create_table(
        "league_memberships",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        _league(),
        sa.Column("week", sa.String(10), nullable=False),
        _player(),
        sa.Column(
            "cohort_id",
            BigId,
            sa.ForeignKey("league_cohorts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("joined_at", TZ, server_default=Now, nullable=False),
        sa.UniqueConstraint("league_id", "week", "player_id", name="uq_league_membership"),
    )
    op.create_index("ix_league_memberships_cohort", "league_memberships", ["cohort_id"])
    op.create_index(
        "ix_league_memberships_player", "league_memberships", ["tenant_id", "player_id"]
    )
    op.create_table(
        "league_players",
        sa.Column(
            "league_id",
            BigId,
            sa.ForeignKey("leagues.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _player(primary=True),
        _tenant(),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("tier_week", sa.String(10), nullable=True),
    )
    op.create_table(
        "league_results",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        _league(),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("cohort_id", sa.BigInteger(), nullable=False),
        _player(),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("cohort_members", sa.Integer(), nullable=False),
        sa.Column("xp", sa.BigInteger(), nullable=False),
        sa.Column("zone", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("next_tier", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.UniqueConstraint("league_id", "week", "player_id", name="uq_league_result"),
    )
    op.create_index(
        "ix_league_results_player", "league_results", ["tenant_id", "player_id", "week"]
    )
    op.create_table(
        "league_finished_events",
        sa.Column("id", BigId, primary_key=True),
        _tenant(),
        _league(),
        sa.Column("week", sa.String(10), nullable=False),
        _player(),
        sa.Column("payload", Json, nullable=False),
        sa.Column("created_at", TZ, server_default=Now, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.UniqueConstraint("league_id", "week", "player_id", name="uq_league_finished"),
    )
    op.create_index(
        "ix_league_finished_undelivered",
        "league_finished_events",
        ["tenant_id", "delivered_at"],
    )
    op.create_table(
        "board_preferences",
        sa.Column(
            "tenant_id",
            BigId,
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _player(primary=True),
        sa.Column("opt_out", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TZ, server_default=Now, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "board_preferences",
        "league_finished_events",
        "league_results",
        "league_players",
        "league_memberships",
        "league_cohorts",
        "league_weeks",
        "leagues",
    ):
        op.drop_table(table)
