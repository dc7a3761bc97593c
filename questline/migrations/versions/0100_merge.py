"""Merge the currency/quests, LTI grades, identity, widgets and credentials branches.

Revision ID: 0100
Revises: 0010, 0030, 0050, 0060, 0070
"""

from __future__ import annotations

revision = "0100"
down_revision = ("0010", "0030", "0050", "0060", "0070")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch disjoint tables."""


def downgrade() -> None:
    """Nothing to undo."""
