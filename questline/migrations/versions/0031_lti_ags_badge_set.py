"""lti: a course's grade can be the share of a badge set completed

Revision ID: 0031
Revises: 0100
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0031"
down_revision = "0100"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("lti_courses") as batch:
        batch.add_column(sa.Column("ags_badge_ids", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lti_courses") as batch:
        batch.drop_column("ags_badge_ids")
