"""The LTI tool's tables: registrations, deployments, the tool's own keys, login state, used
nonces, courses and their members, and the launches a later page refers back to.

Registrations belong to a tenant (ARCHITECTURE invariant 7); the tool's signing keys belong to
the installation (one JWKS for every platform), stored encrypted with the application secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from questline.db import Base, BigId, json_type

TZDateTime = DateTime(timezone=True)


class LtiToolKey(Base):
    """One of the tool's RSA key pairs. The private half is Fernet-encrypted with a key derived
    from QUESTLINE_SECRET_KEY. The newest unretired key signs; a retired key stays in the JWKS
    until ``publish_until`` so tokens it signed can still be verified."""

    __tablename__ = "lti_tool_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kid: Mapped[str] = mapped_column(String(100), unique=True)
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    publish_until: Mapped[datetime | None] = mapped_column(TZDateTime)


class LtiRegistration(Base):
    """A platform (issuer + client id) that may launch Questline, and the tenant it feeds."""

    __tablename__ = "lti_registrations"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_lti_registration_client"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(String(1024))
    auth_token_url: Mapped[str] = mapped_column(String(1024))
    auth_audience: Mapped[str | None] = mapped_column(String(1024))
    key_set_url: Mapped[str] = mapped_column(String(1024))
    # "manual" (questline lti register) or "dynamic" (LTI Dynamic Registration).
    method: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())


class LtiDeployment(Base):
    """A deployment id the platform may send for a registration; any other is refused."""

    __tablename__ = "lti_deployments"
    __table_args__ = (
        UniqueConstraint("registration_id", "deployment_id", name="uq_lti_deployment"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("lti_registrations.id", ondelete="CASCADE")
    )
    deployment_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())


class LtiLoginState(Base):
    """The state and nonce of one OIDC login, kept server-side so a launch can be checked
    without a cookie (browsers that block third-party cookies in iframes). Used once."""

    __tablename__ = "lti_login_states"

    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("lti_registrations.id", ondelete="CASCADE"), index=True
    )
    nonce: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)
    used_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class LtiUsedNonce(Base):
    """Every id_token nonce seen, unique per registration: a replayed token is refused."""

    __tablename__ = "lti_used_nonces"

    registration_id: Mapped[int] = mapped_column(
        ForeignKey("lti_registrations.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())


class LtiCourse(Base):
    """A platform context (course) Questline was launched in, with its service endpoints."""

    __tablename__ = "lti_courses"
    __table_args__ = (UniqueConstraint("registration_id", "context_id", name="uq_lti_course"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("lti_registrations.id", ondelete="CASCADE")
    )
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(512))
    deployment_id: Mapped[str | None] = mapped_column(String(255))
    nrps_url: Mapped[str | None] = mapped_column(String(1024))
    ags_lineitems_url: Mapped[str | None] = mapped_column(String(1024))
    ags_scopes: Mapped[list[str] | None] = mapped_column(json_type())
    # Assignment and Grade Services are optional per course: an instructor turns them on.
    ags_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # What is posted: "xp" (XP toward the goal), "level" (level reached toward the goal) or
    # "badges" (how many of ``ags_badge_ids`` the learner holds; the goal is their number).
    ags_measure: Mapped[str] = mapped_column(String(16), default="xp", server_default="xp")
    # The badge set of the "badges" measure (migration 0031).
    ags_badge_ids: Mapped[list[str] | None] = mapped_column(json_type())
    # The goal in that measure's unit (XP, or a level) that earns full marks on the line item.
    ags_goal_xp: Mapped[int | None] = mapped_column(Integer)
    roster_synced_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())


class LtiCourseMember(Base):
    """A player's roles (and LTI user id) in one course, from launches and roster syncs."""

    __tablename__ = "lti_course_members"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("lti_courses.id", ondelete="CASCADE"), primary_key=True
    )
    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_sub: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(json_type())
    locale: Mapped[str | None] = mapped_column(String(35))
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())


class LtiLaunch(Base):
    """A validated launch, referred to by its random id from the pages that follow it (the
    deep-linking form) instead of a cookie the browser may block inside an iframe."""

    __tablename__ = "lti_launches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("lti_registrations.id", ondelete="CASCADE")
    )
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("lti_courses.id", ondelete="CASCADE"))
    message_type: Mapped[str] = mapped_column(String(64))
    claims: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)


class LtiLineItem(Base):
    """The gradebook column Questline created in a course (found again by its tag)."""

    __tablename__ = "lti_line_items"
    __table_args__ = (UniqueConstraint("course_id", "tag", name="uq_lti_line_item"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("lti_courses.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(100))
    lineitem_url: Mapped[str] = mapped_column(String(1024))
    score_maximum: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())


class LtiScorePost(Base):
    """Outbox of AGS score posts: written in a transaction, delivered by a job that retries
    with backoff and gives up (status ``dead``) after QUESTLINE_MAX_ATTEMPTS."""

    __tablename__ = "lti_score_posts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("lti_courses.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    user_sub: Mapped[str] = mapped_column(String(255))
    score_given: Mapped[float] = mapped_column(Float)
    score_maximum: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(TZDateTime)
