"""lti: what a course's grade posts measure (XP or level reached)

Revision ID: 0030
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lti_courses") as batch:
        batch.add_column(
            sa.Column("ags_measure", sa.String(16), nullable=False, server_default="xp")
        )


def downgrade() -> None:
    with op.batch_alter_table("lti_courses") as batch:
        batch.drop_column("ags_measure")
