"""Widgets as server-rendered HTML: one fragment per widget, wrapped in a page for an iframe.

``render_widget`` is the seam the LTI launch calls (it owns no HTTP): given a tenant, a player
and params it returns the whole widget page, with a freshly signed token inside so the page can
poll for live updates. The embed routes in ``widgets.views`` use the same functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import flask_babel
from flask import current_app, g, render_template, url_for
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from questline.errors import BadRequest, NotFound
from questline.leaderboards import UnknownBoard, validate_board
from widgets import dashboard, data, nudges, quests
from widgets.league import league
from widgets.signing import LOCALES, EmbedGrant, sign

WIDGETS = (
    "leaderboard",
    "league",
    "badges",
    "level",
    "streak",
    "quests",
    "activity",
    "dashboard",
)
DEFAULT_TTL_SECONDS = 8 * 3600
POLL_SECONDS = 15


@dataclass(frozen=True)
class Params:
    """A widget's display options, validated (each bad value is a 400 naming it)."""

    board: str = "tenant"
    window: data.Window = "all"
    limit: int = 10
    neighbours: int = 2
    anonymise: bool = False
    items: int = 10
    poll: int = POLL_SECONDS


def _int(raw: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = raw.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer") from None
    if not low <= number <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return number


def parse_params(raw: Mapping[str, Any], course: str | None = None) -> Params:
    """Read display options from a query string or the LTI launch's custom parameters."""
    board = str(raw.get("board") or (f"course:{course}" if course else "tenant"))
    try:
        validate_board(board)
    except UnknownBoard:
        raise BadRequest("board must be 'tenant' or 'course:<course id>'") from None
    win = str(raw.get("window") or "all")
    win = "all" if win == "all_time" else win  # the LTI deep link's name for it
    if win not in ("all", "week", "month"):
        raise BadRequest("window must be 'all', 'week' or 'month'")
    anonymise = str(raw.get("anonymise", "")).lower()
    if anonymise not in ("", "0", "1", "true", "false"):
        raise BadRequest("anonymise must be 1 or 0")
    return Params(
        board=board,
        window="week" if win == "week" else "month" if win == "month" else "all",
        limit=_int(raw, "limit", 10, 1, 50),
        neighbours=_int(raw, "neighbours", 2, 0, 10),
        anonymise=anonymise in ("1", "true"),
        items=_int(raw, "items", 10, 1, 50),
        poll=_int(raw, "poll", POLL_SECONDS, 2, 300),
    )


_BOUND: dict[int, tuple[Any, Any, Any]] = {}


def _i18n() -> dict[str, Any]:
    """``gettext``/``ngettext`` for the templates, bound to this request's catalogue.

    Flask-Babel's template callables look the catalogue up through the request and app
    contexts on every string; a widget renders 10-100 strings (the calendar's cells each say
    "XP"), which made translation lookups a fifth of a widget's CPU. These do the same as
    Jinja's newstyle gettext (autoescape, ``%`` formatting, ``num`` for plurals) with the
    catalogue looked up once per render. Bound callables are kept per catalogue object.
    """
    translations = flask_babel.get_translations()
    bound = _BOUND.get(id(translations))
    if bound is None or bound[0] is not translations:
        single, plural = translations.ugettext, translations.ungettext

        @pass_context
        def gettext(__context: Context, __string: str, **variables: Any) -> str:
            text = single(__string)
            if __context.eval_ctx.autoescape:
                text = Markup(text)
            return text % variables  # type: ignore[no-any-return]

        @pass_context
        def ngettext(
            __context: Context, __singular: str, __plural: str, __num: int, **variables: Any
        ) -> str:
            variables.setdefault("num", __num)
            text = plural(__singular, __plural, __num)
            if __context.eval_ctx.autoescape:
                text = Markup(text)
            return text % variables  # type: ignore[no-any-return]

        bound = (translations, gettext, ngettext)
        if len(_BOUND) > 16:
            _BOUND.clear()
        _BOUND[id(translations)] = bound
    return {"gettext": bound[1], "ngettext": bound[2]}


def _render(template: str, **view: Any) -> str:
    return render_template(template, **view, **_i18n())


def use_locale(locale: str | None) -> None:
    """Make this request render in ``locale`` (en or es), whatever was chosen before."""
    g.widget_locale = locale if locale in LOCALES else "en"
    flask_babel.refresh()


def fragment(
    name: str,
    tenant_id: int,
    player_id: int,
    params: Params,
    *,
    token: str = "",
    now: datetime | None = None,
) -> str:
    """The widget's inner HTML (what polling replaces); ``token`` goes into its forms."""
    if name not in WIDGETS:
        raise NotFound(f"no widget {name!r}; widgets are {', '.join(WIDGETS)}")
    now = now or datetime.now(UTC)
    ctx = current_app.extensions["questline"]
    with ctx.db.sessions() as session:
        if ctx.db.engine is not None and ctx.db.is_postgres:
            # Reads only: without a transaction PostgreSQL is spared a BEGIN and a ROLLBACK
            # round trip per widget, and each statement still reads committed data (READ
            # COMMITTED takes a snapshot per statement inside a transaction too). Tests bind
            # the session to their own open transaction, where this does not apply.
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        player = data.viewer(session, tenant_id, player_id)
        if player is None:
            raise NotFound(f"no player {player_id} in this tenant")
        view: dict[str, Any] = {"player": player, "params": params, "token": token}
        if name == "leaderboard":
            view["board"] = data.leaderboard(
                session,
                ctx.boards,
                tenant_id,
                player_id,
                board=params.board,
                win=params.window,
                limit=params.limit,
                neighbours=params.neighbours,
                anonymise=params.anonymise,
                now=now,
            )
        elif name == "league":
            view["league"] = league(
                session,
                ctx.boards,
                tenant_id,
                player_id,
                scope=params.board,
                anonymise=params.anonymise,
                now=now,
            )
        elif name == "dashboard":
            goal = data.active_rules(session, tenant_id).daily_xp_goal or ctx.settings.daily_goal_xp
            board = dashboard.learner_dashboard(
                session, tenant_id, player, now=now, daily_goal=goal
            )
            view["dashboard"] = board
            view["cells"] = dashboard.calendar_svg(
                dashboard.calendar_cells(board), flask_babel.gettext("XP")
            )
            view["points"] = dashboard.history_points(board)
            view["ring"] = dashboard.goal_ring(board.goal)
        elif name == "level":
            view["level"] = data.level(session, tenant_id, player)
        elif name == "streak":
            view["streak"] = data.streak(session, tenant_id, player, now=now)
        elif name == "quests":
            rules = data.rule_book(session, tenant_id)
            course = params.board[7:] if params.board.startswith("course:") else None
            view["quests"] = quests.quest_cards(
                session, tenant_id, player, rules, now=now, course=course
            )
        elif name == "badges":
            view["earned"], view["locked"] = data.badge_shelf(session, tenant_id, player, now=now)
        else:
            view["items"] = data.feed(session, tenant_id, player, limit=params.items)
        if name == "streak":
            view["nudges_off"] = nudges.nudges_off(session, tenant_id, player_id)
        nudge = nudges.nudge_for(
            session,
            tenant_id,
            player,
            now=now,
            locked=view.get("locked"),
            league=view.get("league"),
        )
        html = _render(f"widgets/_{name}.html", **view)
        if nudge is not None:
            banner = _render("widgets/_nudge.html", nudge=nudge, token=token, name=name)
            html = banner + html
        return html


def etag(html: str) -> str:
    return hashlib.sha256(html.encode()).hexdigest()[:32]


def page(
    name: str,
    grant: EmbedGrant,
    params: Params,
    token: str,
    query: Mapping[str, str],
    notice: quests.ClaimNotice | None = None,
) -> str:
    """The whole iframe document: the fragment, the stylesheet, the polling script.

    ``notice`` (the outcome of a quest claim) is said above the fragment, outside what polling
    replaces, so the next poll neither drops it nor sees a changed ETag because of it."""
    assert grant.player_id is not None
    body = fragment(name, grant.tenant_id, grant.player_id, params, token=token)
    poll_url = url_for("widgets.embed.widget_fragment", name=name, token=token, **query)
    return _render(
        "widgets/page.html",
        name=name,
        body=body,
        etag=etag(body),
        poll_url=poll_url,
        poll_seconds=params.poll,
        token=token,
        locale=g.get("widget_locale", "en"),
        notice=notice,
    )


def render_widget(name: str, tenant_id: int, player_id: int, params: Mapping[str, Any]) -> str:
    """The seam for the LTI launch: the full widget page for one learner.

    ``params`` takes the display options (``board``, ``window``, ``limit``, ``neighbours``,
    ``anonymise``, ``items``) plus ``locale`` (``en``/``es``, from the launch) and ``course``.
    Must run inside a Flask request of the Questline app. Raises ``BadRequest``/``NotFound``.
    """
    locale = str(params.get("locale") or "en")[:2].lower()
    course = params.get("course") or None
    grant = EmbedGrant(
        tenant_id, player_id, "learner", locale if locale in LOCALES else "en", course
    )
    token = sign(current_app.config["SECRET_KEY"], grant, ttl_seconds=DEFAULT_TTL_SECONDS)
    use_locale(grant.locale)
    parsed = parse_params(params, course)
    query = {
        k: str(v)
        for k, v in params.items()
        if k in ("board", "window", "limit", "neighbours", "anonymise", "items", "poll")
    }
    return page(name, grant, parsed, token, query)


def instructor_url(
    tenant_id: int, *, course: str | None = None, locale: str = "en", viewer: int | None = None
) -> str:
    """A signed link to the instructor dashboard (roster, CSV, award/revoke), for the LTI
    instructor launch to link or redirect to. Must run inside a request of the Questline app."""
    grant = EmbedGrant(
        tenant_id, viewer, "instructor", locale if locale in LOCALES else "en", course
    )
    token = sign(current_app.config["SECRET_KEY"], grant, ttl_seconds=DEFAULT_TTL_SECONDS)
    return url_for("widgets.embed.instructor.dashboard", token=token)
