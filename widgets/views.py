"""Embed routes: the learner widgets behind a signed URL, live updates by polling with ETag, the
opt-out switch, and the API call that mints embed URLs for a tenant's own pages.

* ``GET /widgets/<name>?token=...``: the widget page for an iframe;
* ``GET /widgets/<name>/fragment?token=...``: its inner HTML with an ETag (304 when unchanged);
* ``POST /widgets/preferences``: the learner's leaderboard opt-out (form with the token);
* ``POST /widgets/quests/claim``: claim a completed quest's reward (form with the token);
* ``POST /api/v1/widgets/embed-url``: ``{"player_id", "widget", ...}`` -> a signed URL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, redirect, request, url_for
from flask_babel import Babel, gettext

from questline.api import authenticate, ctx
from questline.errors import BadRequest, Forbidden, NotFound, Unprocessable
from questline.repository import TenantRepository
from widgets import data, nudges, quests, render
from widgets.signing import (
    LOCALES,
    MAX_TTL_SECONDS,
    ROLES,
    EmbedGrant,
    InvalidToken,
    sign,
    verify,
)

bp = Blueprint(
    "embed",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/widgets/static",
)

# Widgets live in other sites' iframes: they may be framed by anyone, load nothing from anyone
# else, and never send the token-bearing URL onward as a referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors *"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
QUERY_KEYS = ("board", "window", "limit", "neighbours", "anonymise", "items", "poll")


def _locale() -> str | None:
    chosen = g.get("widget_locale")
    if chosen:
        return str(chosen)
    return request.accept_languages.best_match(LOCALES) or "en"


@bp.record_once
def _setup_babel(state: Any) -> None:
    """Flask-Babel for the whole app, with this package's catalogues (en, es)."""
    app: Flask = state.app
    folder = str(__import__("pathlib").Path(__file__).parent / "translations")
    dirs = app.config.get("BABEL_TRANSLATION_DIRECTORIES", "translations")
    if folder not in dirs.split(";"):
        app.config["BABEL_TRANSLATION_DIRECTORIES"] = f"{dirs};{folder}"
    if "babel" not in app.extensions:
        Babel(app, locale_selector=_locale)


@bp.after_request
def _headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def grant_from_request() -> tuple[EmbedGrant, str]:
    token = request.values.get("token")
    try:
        grant = verify(current_app.config["SECRET_KEY"], token)
    except InvalidToken as exc:
        raise Forbidden(exc.reason) from None
    render.use_locale(grant.locale)
    return grant, str(token)


def _learner() -> tuple[EmbedGrant, str]:
    grant, token = grant_from_request()
    if grant.player_id is None:
        raise Forbidden("this token is for the instructor dashboard, not a learner widget")
    return grant, token


def _query() -> dict[str, str]:
    return {k: v for k in QUERY_KEYS if (v := request.args.get(k)) is not None}


@bp.get("/widgets/<name>")
def widget_page(name: str) -> Any:
    if name not in render.WIDGETS:
        raise NotFound(f"no widget {name!r}; widgets are {', '.join(render.WIDGETS)}")
    grant, token = _learner()
    params = render.parse_params(request.args, grant.course)
    notice = _claim_notice(grant) if name == "quests" and "quest" in request.args else None
    html = render.page(name, grant, params, token, _query(), notice)
    return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})


def _claim_notice(grant: EmbedGrant) -> quests.ClaimNotice | None:
    """After a claim's redirect: what the stored claim gave (read back, so a hand-edited URL
    can only show a reward that was really given)."""
    assert grant.player_id is not None
    quest_id, period = request.args.get("quest", ""), request.args.get("period", "")
    with ctx().db.sessions() as session:
        stored = quests.claim_of(session, grant.tenant_id, grant.player_id, quest_id, period)
        if stored is None:
            return None
        reward = dict(stored.reward or {})
        if reward.get("badge"):  # the badge's name, as the learner saw it on the card
            badge = data.rule_book(session, grant.tenant_id).badge(str(reward["badge"]))
            reward["badge"] = badge.name if badge is not None else reward["badge"]
    parts = []
    if reward.get("xp"):
        parts.append(gettext("+%(xp)s XP", xp=reward["xp"]))
    if reward.get("currency"):
        parts.append(gettext("+%(coins)s coins", coins=reward["currency"]))
    if reward.get("badge"):
        parts.append(gettext("badge %(name)s", name=reward["badge"]))
    given = ", ".join(parts) or gettext("nothing")
    if request.args.get("again"):
        message = gettext("Already claimed: you received %(reward)s.", reward=given)
    else:
        message = gettext("Reward claimed: %(reward)s.", reward=given)
    return quests.ClaimNotice(True, message)


@bp.get("/widgets/<name>/fragment")
def widget_fragment(name: str) -> Any:
    """The widget's inner HTML for polling: 304 while its ETag still matches."""
    grant, token = _learner()
    params = render.parse_params(request.args, grant.course)
    assert grant.player_id is not None
    html = render.fragment(name, grant.tenant_id, grant.player_id, params, token=token)
    response = Response(html, mimetype="text/html")
    response.set_etag(render.etag(html))
    response.headers["Cache-Control"] = "no-cache, private"
    return response.make_conditional(request)


@bp.post("/widgets/preferences")
def preferences() -> Any:
    """The learner's own switch: stay off the boards others see (shown as anonymous)."""
    grant, token = _learner()
    choice = request.form.get("opt_out")
    if choice not in ("0", "1"):
        raise BadRequest("opt_out must be 1 or 0")
    assert grant.player_id is not None
    with ctx().db.session() as session:
        data.set_opt_out(session, grant.tenant_id, grant.player_id, choice == "1")
    return redirect(url_for(".widget_page", name="leaderboard", token=token, **_query()), 303)


@bp.post("/widgets/quests/claim")
def claim_quest() -> Any:
    """Claim a completed quest's reward from inside the iframe, once.

    CSRF-safe without a cookie: the signed embed token must come in the form body, and nothing
    else authenticates the request, so a page that does not already hold the learner's token
    cannot forge the post. A granted (or earlier granted) claim redirects to the quests widget,
    which then says what was given; a claim that cannot be granted answers 409 with the widget
    and the reason; unknown quests 404, malformed fields 400.
    """
    from questline.quests import ClaimRefused, claim
    from workers.process import write_boards
    from workers.rulesets import active_rule_book

    if "token" not in request.form:
        raise Forbidden("send the widget token in the form body to claim a quest")
    grant, token = _learner()
    assert grant.player_id is not None
    quest_id, period = request.form.get("quest", ""), request.form.get("period", "")
    if not 1 <= len(quest_id) <= 100:
        raise BadRequest("quest must be a quest id (1-100 characters)")
    if not 1 <= len(period) <= 32:
        raise BadRequest("period must be a period such as 2026-11-23, 2026-W48 or dated")
    done = {"quest": quest_id, "period": period}
    try:
        with ctx().db.session() as session:
            rules = active_rule_book(session, grant.tenant_id)
            found = claim(
                session,
                grant.tenant_id,
                grant.player_id,
                quest_id,
                period,
                rules,
                datetime.now(UTC),
            )
            if found is None:
                raise NotFound("this learner is no longer in the tenant")
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except ClaimRefused as exc:
        if exc.code != "already_claimed":
            notice = quests.ClaimNotice(False, refusal_message(exc.code))
            params = render.parse_params(request.args, grant.course)
            html = render.page("quests", grant, params, token, _query(), notice)
            return Response(html, 409, mimetype="text/html", headers={"Cache-Control": "no-store"})
        done["again"] = "1"
    else:
        write_boards(ctx().boards, found[1])
    return redirect(url_for(".widget_page", name="quests", token=token, **done, **_query()), 303)


def refusal_message(code: str) -> str:
    if code == "not_completed":
        return gettext("This quest is not completed yet, so there is no reward to claim.")
    return gettext("This reward cannot be claimed.")


@bp.post("/widgets/nudges")
def nudge_preference() -> Any:
    """The learner's own switch for the nudge banners (streak, league zone, a badge near)."""
    grant, token = _learner()
    off, back = request.form.get("off"), request.form.get("back", "streak")
    if off not in ("0", "1"):
        raise BadRequest("off must be 1 or 0")
    if back not in render.WIDGETS:
        raise BadRequest(f"back must be one of {', '.join(render.WIDGETS)}")
    assert grant.player_id is not None
    with ctx().db.session() as session:
        nudges.set_nudges_off(session, grant.tenant_id, grant.player_id, off == "1")
    return redirect(url_for(".widget_page", name=back, token=token), 303)


@bp.post("/api/v1/widgets/embed-url")
def embed_url() -> Any:
    """Mint a signed widget URL for a player (a tenant's own pages, outside an LMS)."""
    tenant_id = authenticate()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object: {player_id, widget, ...}")
    role = body.get("role", "learner")
    widget = body.get("widget", "leaderboard")
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}")
    if role == "learner" and widget not in render.WIDGETS:
        raise Unprocessable(f"widget must be one of {', '.join(render.WIDGETS)}")
    locale = body.get("locale", "en")
    if locale not in LOCALES:
        raise Unprocessable(f"locale must be one of {', '.join(LOCALES)}")
    ttl = body.get("ttl_seconds", render.DEFAULT_TTL_SECONDS)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= MAX_TTL_SECONDS:
        raise Unprocessable(f"ttl_seconds must be an integer from 60 to {MAX_TTL_SECONDS}")
    course = body.get("course")
    if course is not None and (not isinstance(course, str) or not 0 < len(course) <= 255):
        raise Unprocessable("course must be a course id (1-255 characters)")
    player_id = body.get("player_id")
    if role == "learner" or player_id is not None:
        if isinstance(player_id, bool) or not isinstance(player_id, int):
            raise Unprocessable("player_id must be an integer")
        with ctx().db.sessions() as session:
            if TenantRepository(session, tenant_id).player(player_id) is None:
                raise NotFound(f"no player {player_id} in this tenant")
    options = body.get("params", {})
    if not isinstance(options, dict):
        raise Unprocessable("params must be an object")
    params = {k: str(v) for k, v in options.items() if k in QUERY_KEYS}
    render.parse_params(params, course)  # refuse bad options now, not in the learner's iframe
    grant = EmbedGrant(tenant_id, player_id, role, locale, course)
    token = sign(current_app.config["SECRET_KEY"], grant, ttl_seconds=ttl)
    if role == "instructor":
        url = url_for("widgets.embed.instructor.dashboard", token=token, _external=True)
    else:
        url = url_for(".widget_page", name=widget, token=token, _external=True, **params)
    return jsonify({"url": url, "token": token, "expires_in": ttl}), 201
