"""The widgets' own tables: a learner's choice to receive nudges or not, and the nudges sent
(at most one per learner per local day).

(The leaderboard opt-out is the leagues' ``board_preferences``, shared with the league API.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base, BigId, json_type


class WidgetPreference(Base):
    """Per learner: ``nudges_off`` hides the nudge banners (streak at risk, one step from a
    badge) from every widget they open."""

    __tablename__ = "widget_preferences"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    nudges_off: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NudgeSent(Base):
    """The nudge a learner got on one of their local days (``YYYY-MM-DD`` in their zone).

    Unique per (tenant, player, day): the scheduler inserts with ON CONFLICT DO NOTHING and
    announces only what it inserted, so two schedulers (or one running twice) nudge a learner
    at most once a day, and the outbox rows commit with this row or not at all.
    """

    __tablename__ = "nudges_sent"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    day: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(32))  # streak.at_risk | badge.near | league.at_risk
    detail: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("tenant_id", "player_id", "day", name="uq_nudges_sent_player_day"),
    )
