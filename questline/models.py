"""The tables. Every row belongs to a tenant (ARCHITECTURE invariant 7).

Append-only tables (the inbox, the XP ledger) carry a unique key so a retry or a duplicate
delivery can never count twice (invariant 3). Schema changes go through Alembic only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base, BigId, json_type

TZDateTime = DateTime(timezone=True)


class Tenant(Base):
    """A school or a company: the unit of isolation."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())


class ApiKey(Base):
    """A tenant API key. Only its SHA-256 is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="default")
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class Player(Base):
    """One person in one tenant, whatever paths (LTI, SSO, CRM, API) they arrive by.

    The aggregates (xp, level, streak) are kept in step with the ledger inside the transaction
    that appends to it, so reads never sum the ledger.
    """

    __tablename__ = "players"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    timezone: Mapped[str | None] = mapped_column(String(64))
    xp: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    level: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    events_applied: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    streak_current: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    streak_longest: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The local calendar day (in the player's zone) of the last activity, as ISO text.
    last_active_day: Mapped[str | None] = mapped_column(String(10))
    # The rules engine's counters (XP per rule per day and per object, last award times) as
    # JSON: engine.counters.RuleCounters, saved in the ledger's transaction.
    rule_state: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (Index("ix_players_tenant_xp", "tenant_id", "xp"),)


class PlayerIdentity(Base):
    """One way of recognising a player: an external actor id, an email, later LTI/SSO/CRM ids."""

    __tablename__ = "player_identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (UniqueConstraint("tenant_id", "kind", "value", name="uq_identity"),)


class PlayerCourseStats(Base):
    """A player's XP within one course: the truth behind course leaderboards."""

    __tablename__ = "player_course_stats"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    course: Mapped[str] = mapped_column(String(255), primary_key=True)
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    xp: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class InboxEvent(Base):
    """Every external input, raw and canonical, stored before it is acknowledged.

    Unique per (tenant, source, event key): that uniqueness is what turns at-least-once delivery
    into exactly-once effects. ``status`` moves pending -> applied, or pending -> failed once the
    attempts run out (the dead-letter list).
    """

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    raw: Mapped[str] = mapped_column(Text)
    canonical: Mapped[dict[str, Any]] = mapped_column(json_type())
    occurred_at: Mapped[datetime] = mapped_column(TZDateTime)
    received_at: Mapped[datetime] = mapped_column(TZDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    player_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "event_key", name="uq_inbox_event"),
        # Workers claim pending rows in id order; this partial index keeps that scan tiny.
        Index(
            "ix_inbox_pending",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_inbox_tenant_status", "tenant_id", "status"),
    )


class XpLedger(Base):
    """Append-only XP entries. ``idempotency_key`` (event + rule) is unique per tenant."""

    __tablename__ = "xp_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(450))
    inbox_event_id: Mapped[int | None] = mapped_column(BigInteger)
    rule_id: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    course: Mapped[str | None] = mapped_column(String(255))
    explanation: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(TZDateTime)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_xp_ledger_key"),
        Index("ix_xp_ledger_player", "tenant_id", "player_id"),
    )


class RuleSet(Base):
    """A versioned rule document for a tenant (course NULL) or one course; one version active."""

    __tablename__ = "rule_sets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    course: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(json_type())
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("tenant_id", "course", "version", name="uq_rule_set_version"),
    )


class RuleAudit(Base):
    """Who changed which rule set and how (load, activate, retroactive re-scoring), and when."""

    __tablename__ = "rule_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    course: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (Index("ix_rule_audit_tenant", "tenant_id", "created_at"),)


class PlayerBadge(Base):
    """A badge (or one tier of it) awarded to a player. Append-only but for revocation.

    ``scope`` is the course for course-scoped badges and ``*`` for tenant-wide ones.
    ``idempotency_key`` (event + badge + scope + tier) is unique per tenant, so a replay never
    awards twice. A revoked row keeps its tier: the engine does not simply award it again.
    """

    __tablename__ = "player_badges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(512))
    badge_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[int] = mapped_column(Integer)
    tier_name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(255))
    explanation: Mapped[str] = mapped_column(Text)
    inbox_event_id: Mapped[int | None] = mapped_column(BigInteger)
    awarded_at: Mapped[datetime] = mapped_column(TZDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_player_badge_key"),
        Index("ix_player_badges_player", "tenant_id", "player_id"),
    )


class PlayerInventory(Base):
    """What a player owns, by item (``streak_freeze``, shop rewards): a quantity, never negative.

    Changed only with the player row locked (the worker's batch, a purchase, an admin grant), so
    concurrent changes are serialised by the database.
    """

    __tablename__ = "player_inventory"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    item: Mapped[str] = mapped_column(String(100), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(
        TZDateTime, server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("quantity >= 0", name="ck_inventory_not_negative"),
        Index("ix_player_inventory_tenant", "tenant_id"),
    )
