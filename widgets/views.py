"""Embed routes: the learner widgets behind a signed URL, live updates by polling with ETag, the
opt-out switch, and the API call that mints embed URLs for a tenant's own pages.

* ``GET /widgets/<name>?token=...``: the widget page for an iframe;
* ``GET /widgets/<name>/fragment?token=...``: its inner HTML with an ETag (304 when unchanged);
* ``POST /widgets/preferences``: the learner's leaderboard opt-out (form with the token);
* ``POST /api/v1/widgets/embed-url``: ``{"player_id", "widget", ...}`` -> a signed URL.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, redirect, request, url_for
from flask_babel import Babel

from questline.api import authenticate, ctx
from questline.errors import BadRequest, Forbidden, NotFound, Unprocessable
from questline.repository import TenantRepository
from widgets import data, nudges, render
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
    html = render.page(name, grant, params, token, _query())
    return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})


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


@bp.post("/widgets/nudges")
def nudge_preference() -> Any:
    """The learner's own switch for the nudge banners (streak at risk, a badge one step away)."""
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
