"""League tables: configuration, weeks, cohorts, memberships, results and board preferences.

PostgreSQL holds everything a league needs to be rebuilt: who is in which cohort of which week
(memberships), which tier each player plays next (``league_players``), how far a week's close has
got (``league_weeks.status``) and what each member finished with (``league_results``). Redis only
keeps the live weekly standings, derived from the ledger (ARCHITECTURE invariant 1).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base, BigId, json_type

TZDateTime = DateTime(timezone=True)


class League(Base):
    """Leagues turned on for a tenant (scope ``tenant``) or one course (``course:<id>``)."""

    __tablename__ = "leagues"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(300))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    tiers: Mapped[list[str]] = mapped_column(json_type())
    cohort_size: Mapped[int] = mapped_column(Integer)
    promote: Mapped[list[int]] = mapped_column(json_type())
    demote: Mapped[list[int]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (UniqueConstraint("tenant_id", "scope", name="uq_league_scope"),)


class LeagueWeek(Base):
    """One league's week and how far its close has got: open -> promoted -> closed.

    The close job locks this row (``FOR UPDATE SKIP LOCKED``) so two schedulers never close the
    same week at once, and moves ``status`` forward one step per transaction so a crash resumes.
    """

    __tablename__ = "league_weeks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(10))
    starts_at: Mapped[datetime] = mapped_column(TZDateTime)
    ends_at: Mapped[datetime] = mapped_column(TZDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    closed_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (
        UniqueConstraint("league_id", "week", name="uq_league_week"),
        Index("ix_league_weeks_status", "status", "ends_at"),
    )


class LeagueCohort(Base):
    """A group of about ``cohort_size`` players of one tier competing in one week."""

    __tablename__ = "league_cohorts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(10))
    tier: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (Index("ix_league_cohorts_open", "league_id", "week", "tier", "size"),)


class LeagueMembership(Base):
    """A player's place in one week's cohort, made at their first XP of that week."""

    __tablename__ = "league_memberships"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(10))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    cohort_id: Mapped[int] = mapped_column(ForeignKey("league_cohorts.id", ondelete="CASCADE"))
    tier: Mapped[int] = mapped_column(Integer)
    joined_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("league_id", "week", "player_id", name="uq_league_membership"),
        Index("ix_league_memberships_cohort", "cohort_id"),
        Index("ix_league_memberships_player", "tenant_id", "player_id"),
    )


class LeaguePlayer(Base):
    """The tier a player plays in next; set by the week close (``tier_week`` = that week)."""

    __tablename__ = "league_players"

    league_id: Mapped[int] = mapped_column(
        ForeignKey("leagues.id", ondelete="CASCADE"), primary_key=True
    )
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    tier: Mapped[int] = mapped_column(Integer, default=0)
    tier_week: Mapped[str | None] = mapped_column(String(10))


class LeagueResult(Base):
    """History: how one member finished one week (rank, XP, zone, outcome, next tier)."""

    __tablename__ = "league_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(10))
    cohort_id: Mapped[int] = mapped_column(BigInteger)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    tier: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer)
    cohort_members: Mapped[int] = mapped_column(Integer)
    xp: Mapped[int] = mapped_column(BigInteger)
    zone: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    next_tier: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("league_id", "week", "player_id", name="uq_league_result"),
        Index("ix_league_results_player", "tenant_id", "player_id", "week"),
    )


class LeagueFinishedFact(Base):
    """No longer written: ``league.finished`` leaves through the outbound webhook outbox
    (``webhook_outbox`` rows written by the close, one per member and subscription), so a row
    per member here only cost the close a million inserts. Kept until a migration drops it."""

    __tablename__ = "league_finished_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(10))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (
        UniqueConstraint("league_id", "week", "player_id", name="uq_league_finished"),
        Index("ix_league_finished_undelivered", "tenant_id", "delivered_at"),
    )


class PlayerGroup(Base):
    """A player's membership of an LMS group (an event's ``context.group``), for group boards.

    LTI core claims carry no groups, so Questline learns them from the activity it is sent: the
    first event naming a group makes the actor a member (in the award transaction). A group id
    is opaque and unique within the tenant, as the LMS gives it (Canvas and Moodle group ids
    are). Members stay members: a group board ranks every member by the window's XP.
    """

    __tablename__ = "player_groups"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    joined_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (Index("ix_player_groups_player", "tenant_id", "player_id"),)


class BoardPreference(Base):
    """A player's choice to stay off boards others see (shown as anonymous in their cohort)."""

    __tablename__ = "board_preferences"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
