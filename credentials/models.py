"""Tables of the credentials package: tenant signing keys and issued credentials.

Revocation is not stored here: it is the award row's ``revoked_at`` (``player_badges``), so
revoking a badge anywhere in Questline flips its bit in the published status list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base, BigId, json_type

TZDateTime = DateTime(timezone=True)


class IssuerKey(Base):
    """A tenant's Ed25519 key. The private half is Fernet-encrypted under the app secret;
    ``multikey`` (``z6Mk...``) is the fragment of the verification method URL."""

    __tablename__ = "ob_issuer_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    multikey: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))  # hex of the raw 32 bytes
    private_key_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (UniqueConstraint("tenant_id", "multikey", name="uq_ob_issuer_key"),)


class IssuedCredential(Base):
    """One award issued as a credential: its public id (uuid), its bit in the tenant's status
    list, the recipient salt, and the signed documents exactly as first handed out."""

    __tablename__ = "ob_credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    award_id: Mapped[int] = mapped_column(ForeignKey("player_badges.id", ondelete="CASCADE"))
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    status_index: Mapped[int] = mapped_column(Integer)
    salt: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(json_type())
    jwt: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("tenant_id", "award_id", name="uq_ob_credential_award"),
        UniqueConstraint("tenant_id", "status_index", name="uq_ob_credential_status_index"),
    )
