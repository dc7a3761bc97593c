"""Who is calling, and what they may do: one principal per request, from one of three sources.

- a tenant API key (``Authorization: Bearer ql_...``): the tenant's own service access, admin;
- an OAuth2 client-credentials JWT access token from the tenant's IdP (RFC 9068), whose ``aud``
  is the tenant's ``api_audience``: scopes ``questline:admin`` (admin) and ``questline:read``;
- a signed-in SSO user (the session cookie): a learner, plus any roles granted to their player
  (``admin``; ``instructor`` per course) or given by the IdP's admin group.

Operators are not a tenant role: they act through the CLI on the server.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app, g, request, session
from joserfc import jws
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.orm import Session

from identity import sso_sessions
from identity.errors import Forbidden, SsoRejected
from identity.models import PlayerMerge, PlayerRole, SsoConfig
from identity.oidc import OidcClientCache, audiences, check_times, verify_jwt
from identity.operators import OPERATOR_PREFIX
from identity.roles import is_course_staff
from lti.models import LtiCourse, LtiCourseMember
from questline.errors import NotFound, Unauthorized
from questline.models import PlayerCourseStats
from questline.tenants import KEY_PREFIX

SESSION_USER = "ql_user"
# How long an SSO sign-in lasts before the person must go through the IdP again.
SESSION_MAX_SECONDS = 12 * 3600


def session_user() -> dict[str, Any] | None:
    """The signed-in SSO user, or None. An expired sign-in is cleared, and so is one whose
    server-side session was ended (logout here, back-channel logout from the IdP, erasure):
    the cookie alone is not enough, or a copied cookie would outlive its sign-out."""
    user = session.get(SESSION_USER)
    if not isinstance(user, dict):
        return None
    login_at = user.get("login_at")
    if not isinstance(login_at, int | float) or time.time() - login_at > SESSION_MAX_SECONDS:
        session.pop(SESSION_USER, None)
        return None
    with _db().sessions() as db_session:
        live = sso_sessions.is_live(
            db_session, user.get("session_id"), int(user["tenant_id"]), datetime.now(UTC)
        )
    if not live:
        session.pop(SESSION_USER, None)
        return None
    return user


@dataclass(frozen=True)
class Principal:
    tenant_id: int
    kind: str  # "key", "token" or "user"
    player_id: int | None = None
    admin: bool = False
    courses: frozenset[str] = field(default_factory=frozenset)  # instructor of
    scopes: frozenset[str] = field(default_factory=frozenset)
    name: str = ""

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("this needs a tenant admin")


def _identity_state() -> Any:
    return current_app.extensions["questline_identity"]


def _db() -> Any:
    return current_app.extensions["questline"].db


def validate_access_token(session: Session, token: str, cache: OidcClientCache) -> Principal:
    """A client-credentials JWT access token (RFC 9068) -> the principal of its tenant."""
    try:
        unverified = jws.extract_compact(token.encode())
        claims = json.loads(unverified.payload)
    except (JoseError, ValueError, TypeError):
        raise Unauthorized("the bearer token is neither an API key nor a JWT") from None
    if not isinstance(claims, dict):
        raise Unauthorized("the bearer token's claims are not an object")
    aud = audiences(claims)
    config = (
        session.scalar(
            select(SsoConfig).where(
                SsoConfig.api_audience.in_(aud), SsoConfig.issuer == claims.get("iss")
            )
        )
        if aud
        else None
    )
    if config is None:
        raise Unauthorized("no tenant accepts tokens with this issuer and audience")
    meta = cache.metadata(config.issuer)
    try:
        header, verified = verify_jwt(token, cache, meta.jwks_uri)
        if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
            raise SsoRejected("invalid_token", "not a JWT access token (typ must be at+jwt)")
        check_times(verified, time.time(), 30)
    except SsoRejected as exc:
        raise Unauthorized(f"access token refused: {exc.message}") from None
    scopes = frozenset(str(verified.get("scope", "")).split())
    return Principal(
        tenant_id=config.tenant_id,
        kind="token",
        admin="questline:admin" in scopes,
        scopes=scopes,
        name=f"client:{verified.get('client_id') or verified.get('sub')}",
    )


def current_player(db_session: Session, tenant_id: int, player_id: int) -> int:
    """Follow merges: a session started before a merge keeps working as the merged player."""
    for _ in range(10):
        target = db_session.scalar(
            select(PlayerMerge.target_player_id).where(
                PlayerMerge.tenant_id == tenant_id, PlayerMerge.source_player_id == player_id
            )
        )
        if target is None:
            return player_id
        player_id = int(target)
    return player_id


def lti_staff_courses(db_session: Session, tenant_id: int, player_id: int) -> frozenset[str]:
    """Courses the player teaches according to their LMS: the context roles of their LTI course
    memberships, which every launch and roster sync (NRPS) rewrites. Derived on each request,
    not copied into ``player_roles``, so the LMS stays the authority: a launch as a learner in
    the same course (the LMS demoted them) ends it, and a launch as an instructor in one course
    says nothing about another. The course id is the context id, the ``course`` events carry."""
    rows = db_session.execute(
        select(LtiCourse.context_id, LtiCourseMember.roles)
        .join(LtiCourse, LtiCourse.id == LtiCourseMember.course_id)
        .where(LtiCourseMember.tenant_id == tenant_id, LtiCourseMember.player_id == player_id)
    ).all()
    return frozenset(course for course, roles in rows if is_course_staff(roles or []))


def user_principal(db_session: Session, user: dict[str, Any]) -> Principal:
    tenant_id = int(user["tenant_id"])
    player_id = current_player(db_session, tenant_id, int(user["player_id"]))
    rows = db_session.execute(
        select(PlayerRole.role, PlayerRole.scope).where(
            PlayerRole.tenant_id == tenant_id, PlayerRole.player_id == player_id
        )
    ).all()
    admin = bool(user.get("idp_admin")) or any(role == "admin" for role, _ in rows)
    courses = frozenset(scope for role, scope in rows if role == "instructor")
    courses |= lti_staff_courses(db_session, tenant_id, player_id)
    return Principal(
        tenant_id=tenant_id,
        kind="user",
        player_id=player_id,
        admin=admin,
        courses=courses,
        name=f"player:{player_id}",
    )


def principal() -> Principal:
    """The caller, or 401. A Bearer header wins over a session cookie."""
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    with _db().sessions() as db_session:
        if header:
            if scheme.lower() != "bearer" or not credential:
                raise Unauthorized("send 'Authorization: Bearer <API key or access token>'")
            if credential.startswith(OPERATOR_PREFIX):
                raise Forbidden("an operator key opens /api/v1/ops only, never a tenant's people")
            if credential.startswith(KEY_PREFIX):
                keys = current_app.extensions["questline_keys"]
                tenant_id = keys.tenant_for(db_session, credential)
                if tenant_id is None:
                    raise Unauthorized("unknown or revoked API key")
                found = Principal(tenant_id=int(tenant_id), kind="key", admin=True, name="api-key")
            else:
                found = validate_access_token(db_session, credential, _identity_state().oidc)
        elif (user := session_user()) is not None:
            found = user_principal(db_session, user)
        else:
            raise Unauthorized("sign in with SSO, or send a tenant API key or access token")
    g.tenant_id = found.tenant_id
    return found


def require_json_for_session_writes(who: Principal) -> None:
    """Cookie-authenticated writes must be JSON: a cross-site form cannot send that without a
    CORS preflight, which we never grant, so this stops cross-site request forgery."""
    if who.kind == "user" and not request.is_json:
        raise Unauthorized("writes from a browser session must send Content-Type: application/json")


def can_read_player(db_session: Session, who: Principal, player_id: int) -> None:
    """Admins read anyone in their tenant, learners themselves, instructors their courses."""
    if who.admin or who.player_id == player_id:
        return
    if who.kind == "token" and "questline:read" in who.scopes:
        return
    if who.courses:
        shared = db_session.scalar(
            select(PlayerCourseStats.course).where(
                PlayerCourseStats.tenant_id == who.tenant_id,
                PlayerCourseStats.player_id == player_id,
                PlayerCourseStats.course.in_(who.courses),
            )
        )
        if shared is not None or _lti_member_of(db_session, who, player_id):
            return
    raise Forbidden("you may read only your own profile (or your courses' learners)")


def _lti_member_of(db_session: Session, who: Principal, player_id: int) -> bool:
    """True when the player is on the LMS roster of a course the caller teaches (a learner who
    launched, or came with a roster sync, but has no XP there yet)."""
    found = db_session.scalar(
        select(LtiCourseMember.player_id)
        .join(LtiCourse, LtiCourse.id == LtiCourseMember.course_id)
        .where(
            LtiCourseMember.tenant_id == who.tenant_id,
            LtiCourseMember.player_id == player_id,
            LtiCourse.context_id.in_(who.courses),
        )
        .limit(1)
    )
    return found is not None


def not_found(player_id: int) -> NotFound:
    return NotFound(f"no player {player_id} in this tenant")
