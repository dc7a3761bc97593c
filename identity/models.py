"""Identity tables: per-tenant SSO settings, roles, merges and the identity audit log.

Players and their identities themselves live in ``questline.models`` (``Player``,
``PlayerIdentity``); this module adds what SSO, linking and administration need around them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base, BigId, json_type

TZDateTime = DateTime(timezone=True)


class SsoConfig(Base):
    """One tenant's OpenID Connect provider and link rules.

    ``link_by_email`` joins an SSO login to a player known by that email only when the IdP says
    ``email_verified``; ``link_claim`` names an employee / SIS id claim that joins to a player
    holding an ``employee`` identity with that value. ``api_audience`` is the resource the IdP
    puts in ``aud`` of client-credentials JWT access tokens meant for this tenant's API.
    """

    __tablename__ = "sso_configs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    # Fernet-sealed under QUESTLINE_SECRET_KEY (identity/crypto.py), never stored in clear.
    client_secret_sealed: Mapped[str] = mapped_column(String(1000))
    scopes: Mapped[str] = mapped_column(String(500), default="openid email profile")
    allowed_domains: Mapped[list[str]] = mapped_column(json_type(), default=list)
    link_by_email: Mapped[bool] = mapped_column(Boolean, default=True)
    link_claim: Mapped[str | None] = mapped_column(String(100))
    roles_claim: Mapped[str] = mapped_column(String(100), default="groups")
    admin_group: Mapped[str | None] = mapped_column(String(200))
    api_audience: Mapped[str | None] = mapped_column(String(500), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        TZDateTime, server_default=func.now(), onupdate=func.now()
    )


class PlayerRole(Base):
    """A role beyond learner: ``admin`` (scope ``*``) or ``instructor`` (scope = a course id)."""

    __tablename__ = "player_roles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(255), default="*")
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (
        Index("uq_player_role", "tenant_id", "player_id", "role", "scope", unique=True),
    )


class PlayerMerge(Base):
    """A merge of ``source`` into ``target``: recorded once, so repeating it changes nothing."""

    __tablename__ = "player_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source_player_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    target_player_id: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())


class IdentityAudit(Base):
    """Who linked, unlinked, merged, erased or signed in whom, and why. Kept after erasure
    (it holds ids and rule names, not personal data)."""

    __tablename__ = "identity_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())

    __table_args__ = (Index("ix_identity_audit_tenant", "tenant_id", "created_at"),)


class SsoSession(Base):
    """One SSO sign-in, so it can be ended from the server side: the signed cookie names it,
    and a request whose session row is ended (RP-initiated logout here, OpenID Connect
    Back-Channel Logout from the provider, erasure) is signed out. ``sid`` is the provider's
    session id from the ID token, which a back-channel logout token names."""

    __tablename__ = "sso_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(500))
    sub: Mapped[str] = mapped_column(String(255))
    sid: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (
        Index("ix_sso_sessions_sub", "tenant_id", "issuer", "sub"),
        Index("ix_sso_sessions_sid", "tenant_id", "issuer", "sid"),
    )


class SsoLogoutToken(Base):
    """The ``jti`` of every back-channel logout token accepted, per issuer: a replayed token is
    refused (Back-Channel Logout 1.0, 2.6 step 9). Purged with the sessions it could end."""

    __tablename__ = "sso_logout_tokens"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
