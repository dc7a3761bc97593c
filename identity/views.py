"""Browser routes: SSO login and callback, RP-initiated logout, and ``/me``.

``/sso/<tenant>/login`` remembers state, nonce and the PKCE verifier in the signed session cookie
and redirects to the tenant's provider; ``/sso/<tenant>/callback`` checks the state, exchanges
the code (with the verifier), validates the ID token, reads userinfo, applies the tenant's
allowed domains and link rules, and signs the person in as their player.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from flask import Blueprint, current_app, redirect, render_template_string, request, session
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from identity import sso_sessions
from identity.api import bp as identity_api_bp
from identity.auth import (
    SESSION_MAX_SECONDS,
    SESSION_USER,
    current_player,
    session_user,
    user_principal,
)
from identity.backchannel import validate_logout_token
from identity.config import config_json, find_tenant, sso_config
from identity.crypto import unseal
from identity.errors import Forbidden, SsoRejected
from identity.linking import email_is_verified, link_sso_login
from identity.models import IdentityAudit
from identity.oidc import HTTP_TIMEOUT, OidcClientCache, validate_id_token
from identity.operators import bp as operators_bp
from questline.errors import Unauthorized
from questline.models import InboxEvent, Player, XpLedger
from workers.context import Context

log = logging.getLogger("questline.identity")
bp = Blueprint("identity", __name__)
bp.register_blueprint(identity_api_bp)  # /api/v1/me and /api/v1/identity/...
bp.register_blueprint(operators_bp)  # /api/v1/ops/... for platform operators
PENDING = "ql_sso_pending"
# Inbox sources whose points count as CRM-earned on /me (issue 6's CRM receivers).
CRM_SOURCES = ("hubspot", "salesforce")


@dataclass
class IdentityState:
    """Per-app identity objects: the provider discovery and key cache."""

    oidc: OidcClientCache = field(default_factory=OidcClientCache)


@bp.record_once
def _setup(state: Any) -> None:
    state.app.extensions["questline_identity"] = IdentityState()


def ctx() -> Context:
    return current_app.extensions["questline"]  # type: ignore[no-any-return]


def oidc() -> OidcClientCache:
    return current_app.extensions["questline_identity"].oidc  # type: ignore[no-any-return]


def base_url() -> str:
    return (ctx().settings.public_url or request.url_root).rstrip("/")


def _safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/me"


@bp.get("/sso/<tenant>/login")
def login(tenant: str) -> ResponseReturnValue:
    with ctx().db.sessions() as db_session:
        tenant_row = find_tenant(db_session, tenant)
        config = sso_config(db_session, tenant_row.id)
        if config is None:
            raise SsoRejected("sso_not_configured", f"tenant {tenant!r} has no SSO", 404)
        tenant_id, issuer, client_id = tenant_row.id, config.issuer, config.client_id
        secret = unseal(ctx().settings.secret_key, config.client_secret_sealed)
        scopes = config.scopes
    meta = oidc().metadata(issuer)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    redirect_uri = f"{base_url()}/sso/{tenant_id}/callback"
    oauth = oidc().session(
        client_id=client_id, client_secret=secret, scope=scopes, redirect_uri=redirect_uri
    )
    url, _ = oauth.create_authorization_url(
        meta.authorization_endpoint, state=state, code_verifier=verifier, nonce=nonce
    )
    session[PENDING] = {
        "tenant_id": tenant_id,
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "next": _safe_next(request.args.get("next")),
    }
    return redirect(url, code=302)


def _userinfo(endpoint: str | None, access_token: str | None, sub: str) -> dict[str, Any]:
    """The userinfo claims, whose ``sub`` must equal the ID token's (OIDC Core 5.3.2)."""
    if not endpoint or not access_token:
        return {}
    try:
        response = oidc().http.get(
            endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=HTTP_TIMEOUT
        )
    except requests.RequestException as exc:
        raise SsoRejected("idp_unreachable", f"userinfo failed: {exc}", 502) from None
    if response.status_code != 200:
        raise SsoRejected("idp_error", f"userinfo answered HTTP {response.status_code}", 502)
    try:
        data = response.json()
    except ValueError:
        raise SsoRejected(
            "idp_error", "userinfo is not JSON (signed userinfo unsupported)", 502
        ) from None
    if not isinstance(data, dict) or data.get("sub") != sub:
        raise SsoRejected("invalid_userinfo", "userinfo sub differs from the ID token's sub")
    return data


@bp.get("/sso/<int:tenant_id>/callback")
def callback(tenant_id: int) -> ResponseReturnValue:
    pending = session.pop(PENDING, None)
    if not isinstance(pending, dict) or pending.get("tenant_id") != tenant_id:
        raise SsoRejected("no_login_in_progress", "no SSO login was started for this tenant")
    if request.args.get("state") != pending["state"]:
        raise SsoRejected("state_mismatch", "the state does not match the login started here")
    if "error" in request.args:
        detail = f"{request.args['error']} {request.args.get('error_description', '')}"
        raise SsoRejected("idp_refused", f"the provider refused: {detail.strip()}", 403)
    code = request.args.get("code")
    if not code:
        raise SsoRejected("missing_code", "the provider sent no authorization code")
    with ctx().db.sessions() as db_session:
        config = sso_config(db_session, tenant_id)
        if config is None:
            raise SsoRejected("sso_not_configured", "this tenant has no SSO", 404)
        meta = oidc().metadata(config.issuer)
        oauth = oidc().session(
            client_id=config.client_id,
            client_secret=unseal(ctx().settings.secret_key, config.client_secret_sealed),
            scope=config.scopes,
            redirect_uri=f"{base_url()}/sso/{tenant_id}/callback",
        )
        try:
            token = oauth.fetch_token(
                meta.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=pending["verifier"],
            )
        except AuthlibBaseError as exc:
            raise SsoRejected("token_exchange_failed", f"code exchange refused: {exc}") from None
        except requests.RequestException as exc:
            raise SsoRejected("idp_unreachable", f"code exchange failed: {exc}", 502) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoRejected("invalid_token", "the token response has no id_token")
        claims = validate_id_token(
            id_token, cache=oidc(), meta=meta, client_id=config.client_id, nonce=pending["nonce"]
        )
        merged = {**_userinfo(meta.userinfo_endpoint, token.get("access_token"), claims["sub"])}
        merged.update(claims)  # the signed ID token wins over userinfo on any shared claim
        _check_domain(config.allowed_domains or [], merged)
        with ctx().db.session() as tx:
            link = link_sso_login(tx, tenant_id, config, merged)
            session_id = sso_sessions.start(
                tx,
                tenant_id=tenant_id,
                player_id=link.player_id,
                issuer=config.issuer,
                sub=claims["sub"],
                sid=claims.get("sid"),
                now=datetime.now(UTC),
                lifetime=timedelta(seconds=SESSION_MAX_SECONDS),
            )
        groups = merged.get(config.roles_claim)
        groups = [groups] if isinstance(groups, str) else groups if isinstance(groups, list) else []
        idp_admin = bool(config.admin_group) and config.admin_group in groups
    session.clear()  # a fresh session on sign-in (no fixation)
    session[SESSION_USER] = {
        "tenant_id": tenant_id,
        "player_id": link.player_id,
        "sub": claims["sub"],
        "id_token": id_token,
        "idp_admin": idp_admin,
        "login_at": int(time.time()),
        "session_id": session_id,
    }
    log.info("sso login", extra={"tenant_id": tenant_id, "rule": link.rule})
    return redirect(pending["next"], code=302)


def _check_domain(allowed: list[str], claims: dict[str, Any]) -> None:
    """With allowed domains set, only a verified email in one of them may sign in."""
    if not allowed:
        return
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or not email_is_verified(claims):
        raise Forbidden("this tenant's SSO needs a verified email in an allowed domain")
    if email.rsplit("@", 1)[1].lower() not in allowed:
        raise Forbidden("your email domain is not allowed to sign in to this tenant")


@bp.route("/sso/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    """Sign out here, then at the provider (RP-initiated logout) when it supports it."""
    user = session.get(SESSION_USER)
    session.clear()
    done = f"{base_url()}/sso/logged-out"
    if not isinstance(user, dict):
        return redirect(done, code=302)
    with ctx().db.session() as db_session:
        sso_sessions.end(db_session, user.get("session_id"), datetime.now(UTC))
        config = sso_config(db_session, int(user["tenant_id"]))
    if config is None:
        return redirect(done, code=302)
    meta = oidc().metadata(config.issuer)
    if not meta.end_session_endpoint:
        return redirect(done, code=302)
    query = urlencode(
        {
            "id_token_hint": user.get("id_token", ""),
            "post_logout_redirect_uri": done,
            "client_id": config.client_id,
        }
    )
    return redirect(f"{meta.end_session_endpoint}?{query}", code=302)


@bp.post("/sso/<int:tenant_id>/backchannel-logout")
def backchannel_logout(tenant_id: int) -> ResponseReturnValue:
    """OpenID Connect Back-Channel Logout 1.0: the provider ends this person's sessions here.
    A refusal is a 400 naming the check that failed (the spec's answer); success is 200."""
    token = request.form.get("logout_token")
    if not token:
        raise SsoRejected("invalid_request", "POST logout_token as a form field")
    now = datetime.now(UTC)
    with ctx().db.session() as tx:
        config = sso_config(tx, tenant_id)
        if config is None:
            raise SsoRejected("sso_not_configured", "this tenant has no SSO", 404)
        claims = validate_logout_token(
            token,
            cache=oidc(),
            meta=oidc().metadata(config.issuer),
            client_id=config.client_id,
            now=now.timestamp(),
        )
        if not sso_sessions.first_use_of(tx, config.issuer, claims["jti"], now):
            raise SsoRejected("invalid_logout_token", "this logout token was already used")
        ended = sso_sessions.end_for_logout(
            tx,
            tenant_id=tenant_id,
            issuer=config.issuer,
            sub=claims.get("sub"),
            sid=claims.get("sid"),
            now=now,
        )
    log.info("sso back-channel logout", extra={"tenant_id": tenant_id, "ended": ended})
    return "", 200, {"Cache-Control": "no-store"}


@bp.get("/sso/logged-out")
def logged_out() -> ResponseReturnValue:
    return render_template_string(PAGE, title="Signed out", body="<p>You are signed out.</p>")


def profile(tenant_id: int, player_id: int) -> dict[str, Any]:
    """What /me shows: the player, XP split into training and CRM-earned, and the top board."""
    with ctx().db.sessions() as db_session:
        player = db_session.scalar(
            select(Player).where(Player.tenant_id == tenant_id, Player.id == player_id)
        )
        if player is None:
            raise Unauthorized("your player no longer exists; sign in again")
        by_source = dict(
            db_session.execute(
                select(InboxEvent.source, func.sum(XpLedger.amount))
                .join(InboxEvent, InboxEvent.id == XpLedger.inbox_event_id, isouter=True)
                .where(XpLedger.tenant_id == tenant_id, XpLedger.player_id == player_id)
                .group_by(InboxEvent.source)
            ).all()
        )
        crm = sum(int(v or 0) for k, v in by_source.items() if k in CRM_SOURCES)
        out: dict[str, Any] = {
            "id": player.id,
            "display_name": player.display_name,
            "xp": player.xp,
            "level": player.level,
            "training_xp": int(player.xp) - crm,
            "crm_xp": crm,
            "streak": player.streak_current,
        }
    try:
        entries, _total, rank = ctx().boards.page(tenant_id, "tenant", limit=10, around=player_id)
    except Exception:
        log.warning("board unavailable on /me", exc_info=True)
        entries, rank = [], None
    with ctx().db.sessions() as db_session:
        names = dict(
            db_session.execute(
                select(Player.id, Player.display_name).where(
                    Player.tenant_id == tenant_id, Player.id.in_([p for _, p, _ in entries])
                )
            ).all()
        )
    out["rank"] = rank
    out["board"] = [
        {"rank": r, "player_id": p, "display_name": names.get(p, ""), "xp": xp}
        for r, p, xp in entries
    ]
    return out


@bp.get("/me")
def me() -> ResponseReturnValue:
    user = session_user()
    if user is None:
        return redirect("/sso/logged-out", code=302)
    with ctx().db.sessions() as db_session:
        who = user_principal(db_session, user)
        player_id = current_player(db_session, who.tenant_id, int(user["player_id"]))
    data = profile(who.tenant_id, player_id)
    return render_template_string(ME_PAGE, me=data, admin=who.admin, courses=sorted(who.courses))


@bp.get("/admin/identity")
def admin_page() -> ResponseReturnValue:
    """The tenant admin's page: SSO settings (never the secret) and the identity audit log."""
    user = session_user()
    if user is None:
        return redirect("/sso/logged-out", code=302)
    with ctx().db.sessions() as db_session:
        who = user_principal(db_session, user)
        if not who.admin:
            raise Forbidden("the identity admin page is for tenant admins")
        config = sso_config(db_session, who.tenant_id)
        entries = db_session.scalars(
            select(IdentityAudit)
            .where(IdentityAudit.tenant_id == who.tenant_id)
            .order_by(IdentityAudit.id.desc())
            .limit(50)
        ).all()
        settings = config_json(config) if config is not None else {}
        rows = [(a.created_at, a.action, a.actor, a.player_id, a.detail) for a in entries]
    return render_template_string(ADMIN_PAGE, settings=settings, rows=rows)


ADMIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Identity admin - Questline</title></head><body><main>
<h1>Identity</h1><h2>Single sign-on</h2>
<table id="sso">{% for k, v in settings.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>
{% endfor %}</table>
<p>Change settings, links, merges and roles through <code>/api/v1/identity/...</code>.</p>
<h2>Audit</h2><table id="audit"><tr><th>when</th><th>action</th><th>by</th><th>player</th>
<th>detail</th></tr>{% for at, action, actor, pid, detail in rows %}
<tr><td>{{ at }}</td><td>{{ action }}</td><td>{{ actor }}</td><td>{{ pid or "" }}</td>
<td>{{ detail }}</td></tr>{% endfor %}</table></main></body></html>"""


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
</head><body><main>{{ body|safe }}</main></body></html>"""

ME_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{{ me.display_name }} - Questline</title></head><body><main>
<h1 data-player="{{ me.id }}">{{ me.display_name }}</h1>
<p>Level {{ me.level }} &middot; <span id="xp">{{ me.xp }}</span> XP
{% if me.rank %}&middot; rank {{ me.rank }}{% endif %}</p>
<table><tr><th>Training XP</th><td id="training-xp">{{ me.training_xp }}</td></tr>
<tr><th>CRM-earned XP</th><td id="crm-xp">{{ me.crm_xp }}</td></tr></table>
<h2>Company board</h2><ol>{% for e in me.board %}
<li value="{{ e.rank }}">{{ e.display_name }} ({{ e.xp }} XP)</li>{% endfor %}</ol>
{% if admin %}<p id="admin">You are a tenant admin: <a href="/admin/identity">identity
admin</a>.</p>{% endif %}
{% if courses %}<p id="instructor">Instructor of: {{ courses|join(", ") }}</p>{% endif %}
<form method="post" action="/sso/logout"><button type="submit">Sign out</button></form>
</main></body></html>"""
