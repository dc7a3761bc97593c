"""The ``/lti/...`` blueprint: JWKS, OIDC login, launch, deep-linking answer, the config page.

Every refusal is an ``LtiRejected`` rendered by this blueprint's handler as a small HTML page
that names the reason, with a 4xx status; nothing the platform or browser sends becomes a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import (
    Blueprint,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti import grades, jobs
from lti.deep_linking import DL_SETTINGS_CLAIM, SIZES, WIDGETS, WINDOWS, WidgetChoice, response_jwt
from lti.dynamic_registration import register as register_dynamically
from lti.dynamic_registration import tenant_of_invitation
from lti.errors import LtiRejected
from lti.keys import KeyUnavailable, SigningKeyCache, published_jwks
from lti.login_state import nonce_for
from lti.login_state import verify as verify_state
from lti.models import LtiCourse, LtiCourseMember, LtiLaunch, LtiRegistration
from lti.protocol import CLAIM, DEPLOYMENT_CLAIM, Launch, Login, LtiRequest
from lti.tool_config import DbToolConf, JwksCache, RegistrationCache
from lti.visits import Visit, is_instructor, record_visit
from questline.models import Player, Tenant
from workers.context import Context
from workers.rulesets import active_rules

log = logging.getLogger("questline.lti")
bp = Blueprint("lti", __name__, url_prefix="/lti", template_folder="templates")


@dataclass
class LtiState:
    """Per-app LTI objects: the platform key cache, the tool's decrypted signing key and the
    registrations, kept between requests so a launch does not rebuild them."""

    jwks: JwksCache
    keys: SigningKeyCache
    http: requests.Session = field(default_factory=requests.Session)
    registrations: RegistrationCache = field(default_factory=RegistrationCache)


@bp.record_once
def _setup(state: Any) -> None:
    settings = state.app.extensions["questline"].settings
    state.app.extensions["questline_lti"] = LtiState(
        JwksCache(ttl=settings.lti_jwks_cache_seconds), SigningKeyCache(settings.secret_key)
    )


def ctx() -> Context:
    return current_app.extensions["questline"]  # type: ignore[no-any-return]


def lti_state() -> LtiState:
    return current_app.extensions["questline_lti"]  # type: ignore[no-any-return]


def base_url() -> str:
    """Questline's public address: QUESTLINE_PUBLIC_URL, else the one this request came to."""
    return (ctx().settings.public_url or request.url_root).rstrip("/")


def _served_over_https() -> bool:
    """Inside an LMS iframe our cookie is third-party: browsers keep it only with
    ``SameSite=None; Secure``, which pylti1p3 sets when the request is secure. Behind a proxy
    that ends TLS the request looks like plain HTTP, so an https QUESTLINE_PUBLIC_URL counts."""
    public = ctx().settings.public_url or ""
    return request.is_secure or public.startswith("https://")


def tool_config(session: Session) -> DbToolConf:
    keys = lti_state().keys

    def private_key() -> tuple[str, str]:
        try:
            key = keys.current(session)
        except KeyUnavailable as exc:
            raise LtiRejected("tool_key_unavailable", str(exc), status=503) from None
        return key.kid, key.private_pem

    return DbToolConf(session, lti_state().jwks, private_key, lti_state().registrations)


@bp.errorhandler(LtiRejected)
def _rejected(exc: LtiRejected) -> ResponseReturnValue:
    log.info("lti request refused", extra={"reason": exc.reason, "path": request.path})
    html = render_template("lti/error.html", reason=exc.reason, message=exc.message)
    return html, exc.status


@bp.get("/jwks")
def jwks() -> ResponseReturnValue:
    with ctx().db.sessions() as session:
        body = published_jwks(session, datetime.now(UTC))
    response = make_response(body)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """OIDC third-party initiated login. pylti1p3's cookie-check page is not used: the state is
    kept server-side, so a browser that refuses our cookie can still complete the launch."""
    params = {**request.args.to_dict(), **request.form.to_dict()}
    if not params.get("iss") or not params.get("login_hint"):
        raise LtiRejected("invalid_login", "the login request needs iss and login_hint")
    req = LtiRequest(params, request.cookies, _served_over_https())
    # Registrations come from the per-process cache: usually no statement runs at all, and the
    # session only opens a connection if the cache has to be filled.
    with ctx().db.sessions() as session:
        flow = Login(req, tool_config(session), ctx().settings.secret_key, datetime.now(UTC))
        url = flow.redirect_url(base_url() + "/lti/launch")
    issued = flow.issued
    assert issued is not None
    if issued.storage_target is None:
        response = redirect(url)
    else:
        fallback = {k: v for k, v in params.items() if k != "lti_storage_target"}
        response = make_response(
            render_template(
                "lti/login_storage.html",
                target=issued.storage_target,
                platform_origin=_origin(url),
                key=issued.storage_key,
                state=issued.state,
                auth_url=url,
                fallback_url=base_url() + "/lti/login?" + urlencode(fallback),
            )
        )
    flow.cookies.update_response(response)
    return response


def _origin(url: str) -> str:
    """The scheme, host and port of a URL: the postMessage target origin of the platform."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.post("/launch")
def launch() -> ResponseReturnValue:
    now = datetime.now(UTC)
    req = LtiRequest(request.form.to_dict(), request.cookies, _served_over_https())
    with ctx().db.session() as session:
        checked = Launch(req, tool_config(session), session, now, ctx().settings.secret_key).run()
        registration = checked.registration
        assert registration is not None
        claims = checked.claims
        # The login kept its state in the platform's postMessage storage and our cookie did
        # not come: the page must first read the state back in this browser.
        login = checked.login
        storage_check = login is not None and login.post_message and not checked.cookie_seen
        visit = record_visit(
            session, registration.tenant_id, registration.id, claims, now, storage_check
        )
        course = session.get(LtiCourse, visit.course_id) if visit.course_id else None
        scores = 0
        if course is not None and not visit.instructor:
            scores = grades.queue_progress(session, course, [visit.player_id], now)
        sync_roster = course is not None and visit.instructor and bool(course.nrps_url)
        if storage_check:
            assert login is not None and login.storage_target is not None
            page = render_template(
                "lti/launch_storage.html",
                target=login.storage_target,
                platform_origin=_origin(registration.get_auth_login_url()),
                key=login.storage_key,
                state=login.state,
                continue_url=url_for("lti.launch_continue", launch_id=visit.launch_id),
            )
        else:
            page = _page_for(session, registration.tenant_id, visit, claims)
    # Committed: only now wake the workers. The rows are durable, so a failed wake-up costs
    # latency (the sweep or the next scheduled sync picks them up), never data.
    _after_commit("wake workers", ctx().dispatcher.wake, bool(visit.inbox_ids))
    _after_commit("post scores", lambda: jobs.wake_scores(ctx()), scores > 0)
    _after_commit(
        "sync the roster",
        lambda: jobs.request_roster_sync(ctx(), visit.course_id or 0),
        sync_roster,
    )
    # A widget reads the player through its own session: render it once the launch committed.
    return page() if callable(page) else page


@bp.post("/launch/<launch_id>/continue")
def launch_continue(launch_id: str) -> ResponseReturnValue:
    """The second half of a launch checked through the postMessage storage: the launch page
    found this launch's state in the platform's storage and posts it here. The launch id is
    known only to the browser that made the launch; the state must be the one whose nonce
    the launch's id_token carried."""
    state = request.form.get("state", "")
    now = datetime.now(UTC)
    with ctx().db.session() as session:
        record = _recent_launch(session, launch_id, now)
        issued = verify_state(ctx().settings.secret_key, state, now)
        if (
            issued is None
            or issued.registration_id != record.registration_id
            or nonce_for(ctx().settings.secret_key, state) != record.claims.get("nonce")
        ):
            raise LtiRejected(
                "state_mismatch", "the state does not belong to this launch", status=401
            )
        roles = record.claims.get(CLAIM + "roles") or []
        visit = Visit(launch_id, record.player_id, record.course_id, [], is_instructor(roles))
        page = _page_for(session, record.tenant_id, visit, record.claims)
    return page() if callable(page) else page


def _after_commit(what: str, action: Callable[[], None], wanted: bool) -> None:
    if not wanted:
        return
    try:
        action()
    except Exception:
        log.error("after a launch, could not %s", what, exc_info=True)


def _page_for(
    session: Session, tenant_id: int, visit: Any, claims: dict[str, Any]
) -> ResponseReturnValue | Callable[[], str]:
    message_type = claims.get(CLAIM + "message_type")
    roles = claims.get(CLAIM + "roles") or []
    if message_type == "LtiDeepLinkingRequest":
        if not is_instructor(roles):
            raise LtiRejected(
                "forbidden", "only an instructor can add Questline to a course", status=403
            )
        return render_template(
            "lti/deep_link.html",
            launch_id=visit.launch_id,
            widgets=WIDGETS,
            windows=WINDOWS,
            sizes=SIZES,
        )
    course_title = _context_title(claims)
    if visit.instructor:
        members = session.execute(
            select(Player, LtiCourseMember.roles)
            .join(LtiCourseMember, LtiCourseMember.player_id == Player.id)
            .where(LtiCourseMember.course_id == visit.course_id, Player.tenant_id == tenant_id)
            .order_by(Player.xp.desc(), Player.display_name)
        ).all()
        rules = active_rules(session, tenant_id)
        course = session.get(LtiCourse, visit.course_id)
        from widgets.render import instructor_url

        locale = claims.get("locale") if isinstance(claims.get("locale"), str) else "en"
        dashboard_url = instructor_url(
            tenant_id,
            course=course.context_id if course else None,
            locale=locale[:2].lower(),
            viewer=visit.player_id,
        )
        return render_template(
            "lti/instructor.html",
            dashboard_url=dashboard_url,
            course_title=course_title,
            course=course,
            launch_id=visit.launch_id,
            members=[(p, is_instructor(r)) for p, r in members],
            rules=rules.xp,
            base_url=base_url(),
        )
    return learner_page(session, tenant_id, visit.player_id, widget_for_launch(claims), claims)


def widget_for_launch(claims: dict[str, Any]) -> WidgetChoice:
    """The seam for the widgets issue: which widget (and options: board window, anonymise,
    size) a learner's launch shows, from the custom parameters deep linking put on the link."""
    return WidgetChoice.from_launch(claims.get(CLAIM + "custom"))


def learner_page(
    session: Session,
    tenant_id: int,
    player_id: int,
    choice: WidgetChoice,
    claims: dict[str, Any],
) -> ResponseReturnValue | Callable[[], str]:
    """What a learner sees inside the LMS: the deep-linked widget, rendered by ``widgets`` in
    the launch's locale for the launch's course (quests included). A widget ``widgets`` does
    not render falls back to the player's own level, XP and streak under the widget's title."""
    from widgets.render import WIDGETS as RENDERED
    from widgets.render import render_widget

    if choice.widget in RENDERED:
        context = claims.get(CLAIM + "context")
        course = context.get("id") if isinstance(context, dict) else None
        locale = claims.get("locale") if isinstance(claims.get("locale"), str) else "en"
        params = {
            "window": choice.window,
            "anonymise": "1" if choice.anonymise else "0",
            "locale": locale,
            "course": str(course) if course else None,
        }
        return lambda: render_widget(choice.widget, tenant_id, player_id, params)
    player = session.get(Player, player_id)
    assert player is not None and player.tenant_id == tenant_id
    curve = active_rules(session, tenant_id).levels
    return render_template(
        "lti/learner.html",
        player=player,
        next_level_xp=curve.xp_for(player.level + 1),
        widget=choice.title,
        choice=choice,
        course_title=_context_title(claims),
    )


def _context_title(claims: dict[str, Any]) -> str | None:
    context = claims.get(CLAIM + "context")
    title = context.get("title") if isinstance(context, dict) else None
    return title if isinstance(title, str) else None


@bp.post("/deep-link/<launch_id>")
def deep_link_choice(launch_id: str) -> ResponseReturnValue:
    """The instructor's widget choice, answered with the signed response form. The launch id
    in the URL (not a cookie) ties this to the validated deep-linking launch."""
    choice = WidgetChoice.from_form(request.form.to_dict())
    now = datetime.now(UTC)
    with ctx().db.sessions() as session:
        record = _recent_launch(session, launch_id, now)
        if record.message_type != "LtiDeepLinkingRequest":
            raise LtiRejected("wrong_message_type", "this launch was not a deep-linking request")
        claims = record.claims
        row = session.get(LtiRegistration, record.registration_id)
        assert row is not None
        config = tool_config(session)
        registration = config.find_registration_by_params(row.issuer, row.client_id)
        settings = claims.get(DL_SETTINGS_CLAIM) or {}
        token = response_jwt(
            registration, claims[DEPLOYMENT_CLAIM], settings, choice, base_url() + "/lti/launch"
        )
    return render_template(
        "lti/deep_link_return.html", return_url=settings["deep_link_return_url"], jwt=token
    )


@bp.post("/grades/<launch_id>")
def enable_grades(launch_id: str) -> ResponseReturnValue:
    """An instructor turns on grade posting for the course of their (recent) launch."""
    raw_goal = request.form.get("goal_xp", "")
    measure = request.form.get("measure", "xp")
    badge_ids = grades.badge_set(request.form.get("badges")) if measure == "badges" else None
    if badge_ids is not None:
        raw_goal = str(len(badge_ids))  # the whole set is full marks
    if not raw_goal.isdigit():
        raise LtiRejected("invalid_choice", "the goal must be a whole number")
    now = datetime.now(UTC)
    with ctx().db.session() as session:
        record = _recent_launch(session, launch_id, now)
        if not is_instructor(record.claims.get(CLAIM + "roles") or []):
            raise LtiRejected("forbidden", "only an instructor can change grading", status=403)
        course = session.get(LtiCourse, record.course_id) if record.course_id else None
        if course is None:
            raise LtiRejected("ags_unavailable", "this launch was not in a course")
        queued = grades.enable(session, course, int(raw_goal), now, measure, badge_ids)
    _after_commit("post scores", lambda: jobs.wake_scores(ctx()), queued > 0)
    return render_template(
        "lti/grades_on.html",
        goal=int(raw_goal),
        unit=grades.MEASURES[measure],
        queued=queued,
        badge_ids=badge_ids,
    )


def _recent_launch(session: Session, launch_id: str, now: datetime) -> LtiLaunch:
    record = session.get(LtiLaunch, launch_id)
    if record is None or record.expires_at <= now:
        raise LtiRejected("unknown_launch", "this Questline session is unknown or expired")
    return record


@bp.get("/register")
def dynamic_registration() -> ResponseReturnValue:
    """LTI Dynamic Registration 1.0: the platform opens this (in an iframe or a window) with
    ``openid_configuration`` and ``registration_token``; our ``tenant`` invitation rides along
    because the administrator pasted the URL that carries it. The answer page tells the
    platform we are done (``org.imsglobal.lti.close``) so it can show its own confirmation."""
    tenant_id = tenant_of_invitation(ctx().settings.secret_key, request.args.get("tenant"))
    with ctx().db.session() as session:
        if session.get(Tenant, tenant_id) is None:
            raise LtiRejected("invalid_invitation", "the tenant of this registration URL is gone")
        done = register_dynamically(
            session,
            lti_state().http,
            tenant_id=tenant_id,
            base_url=base_url(),
            openid_configuration=request.args.get("openid_configuration"),
            registration_token=request.args.get("registration_token"),
        )
    log.info(
        "lti platform registered dynamically",
        extra={"tenant_id": tenant_id, "issuer": done.issuer, "client_id": done.client_id},
    )
    return render_template("lti/registered.html", done=done)


@bp.get("/config")
def config_page() -> ResponseReturnValue:
    """The printable page of Questline's own URLs for a platform administrator."""
    base = base_url()
    return render_template(
        "lti/config.html",
        urls={
            "Login initiation URL (OIDC)": base + "/lti/login",
            "Target link / redirect URI": base + "/lti/launch",
            "Deep linking URL": base + "/lti/launch",
            "Public keyset URL (JWKS)": base + "/lti/jwks",
            "Dynamic registration URL": base + "/lti/register",
        },
        command=(
            "questline lti register --tenant T --issuer URL --client-id ID --deployment-id ID "
            "--auth-login-url URL --auth-token-url URL --key-set-url URL"
        ),
    )
