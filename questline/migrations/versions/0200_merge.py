"""Merge the branches of the second round: league groups, LTI badge-set grades, SSO sessions
and nudges.

Revision ID: 0200
Revises: 0021, 0031, 0051, 0065
"""

from __future__ import annotations

revision = "0200"
down_revision = ("0021", "0031", "0051", "0065")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch disjoint tables."""


def downgrade() -> None:
    """Nothing to undo."""
