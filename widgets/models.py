"""The widgets' own table: a learner's choice to receive nudges in their widgets or not.

(The leaderboard opt-out is the leagues' ``board_preferences``, shared with the league API.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, func
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base


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
