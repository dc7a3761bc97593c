"""The webhook tables: connections (one per sending system), their secrets, and CRM owners.

A connection is what a URL ``POST /webhooks/<public_id>`` points at: it knows its kind, its
tenant, how identities map (``config``) and one or more secrets. Secrets are kept in clear because
HMAC verification needs the key itself; a rotated-out secret keeps working until ``expires_at``
(the overlap window), so a sender can switch without losing a delivery.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base, BigId, json_type

TZDateTime = DateTime(timezone=True)


class WebhookConnection(Base):
    """One sending system for one tenant: kind (moodle, hubspot, ...) and mapping options."""

    __tablename__ = "webhook_connections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # The opaque id in the URL; lowercase so it can be part of an inbox ``source``.
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(200), default="")
    # Kind-specific options: identity mapping, namespace, org id, JWKS URL (see webhooks.config).
    config: Mapped[dict[str, Any]] = mapped_column(json_type(), default=dict)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class WebhookSecret(Base):
    """A secret of a connection; valid while ``expires_at`` is unset or in the future."""

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_connections.id", ondelete="CASCADE"), index=True
    )
    secret: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class CrmRecordOwner(Base):
    """Who owns a CRM record (a HubSpot deal), learnt from owner-change webhooks, so a later
    closed-won event can credit the owner without calling the CRM's API in the request path."""

    __tablename__ = "webhook_crm_owners"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_connections.id", ondelete="CASCADE")
    )
    record_id: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(TZDateTime)

    __table_args__ = (
        UniqueConstraint("connection_id", "record_id", name="uq_crm_owner_record"),
        Index("ix_crm_owner_tenant", "tenant_id"),
    )


class WebhookSubscription(Base):
    """A tenant's URL subscribed to some of Questline's own events, signed with ``secret``
    (a Standard Webhooks ``whsec_`` secret)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(json_type())
    secret: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class WebhookOutbox(Base):
    """One message to one subscription, written in the transaction that caused it.

    Unique per (subscription, key) so re-running an award cannot notify twice; ``message_id`` is
    the ``webhook-id`` the receiver dedupes on, the same across retries. ``status`` moves
    pending -> delivered, or pending -> failed once the attempts run out.
    """

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(80))
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(json_type())
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime)
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (
        UniqueConstraint("subscription_id", "key", name="uq_webhook_outbox_key"),
        Index("ix_webhook_outbox_due", "status", "next_attempt_at"),
        Index("ix_webhook_outbox_tenant", "tenant_id", "id"),
    )


class WebhookDeliveryAttempt(Base):
    """The delivery log: every attempt, its HTTP status or error, and how long it took."""

    __tablename__ = "webhook_delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    outbox_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_outbox.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(TZDateTime)
    status_code: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column()
