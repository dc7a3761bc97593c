"""The instructor's rules page: view and edit the course rule set (YAML) with validation errors
per path, simulate it over the course's stored events, and activate it with or without retro.

Everything goes through the existing rules machinery: ``engine.rules.parse_rules`` (the checker
behind ``questline rules check``), ``questline.rules_replay.simulate`` and ``retro_apply``, and
``workers.rulesets.store_version``. This module only reads forms and renders.

Progressive enhancement: one ``<form>`` whose buttons post to check, simulate and activate, so
the page works by submit alone; ``rules.js`` adds live validation by posting the same form to
``check`` with ``Accept: application/json`` as the instructor types.

CSRF: a page inside an LMS iframe cannot rely on cookies (third-party cookies are blocked), and
it has none. The authority is the signed instructor token, which must come in the POST body
(never the query string), so another site can only forge a request if it already holds the
token; and every change is a POST.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.rules import InvalidRules, parse_rules
from questline.api import ctx
from questline.errors import BadRequest, Forbidden
from questline.rules_api import MAX_DOCUMENT_BYTES
from questline.rules_replay import SimulationReport, count_history, retro_apply, simulate
from widgets.signing import EmbedGrant
from widgets.views import grant_from_request
from workers.rulesets import read_document, store_version, versions

bp = Blueprint("rules_page", __name__, url_prefix="/rules")

# The simulation runs inside a web request: bounded by a window and an event count, so it
# answers in a few seconds at most (``questline rules simulate`` has no such bound).
WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_WINDOW = "30d"
MAX_SIMULATE_EVENTS = 20_000  # about 2-3 s of CPU (measured: 5,000 events in 0.5-0.8 s)
MAX_CHANGES_SHOWN = 200
# The page offers retro only for histories it can replay inside a request; larger ones are a
# job for ``questline rules load --retro`` (it locks every player for the whole run).
MAX_RETRO_EVENTS = 100_000
STARTER = "# No course rule set yet: the tenant's rules apply.\nversion: 2\nxp: []\n"


@dataclass(frozen=True)
class RuleError:
    """One validation error: the document path, the message, and its line when found."""

    path: str
    message: str
    line: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, "line": self.line}


def _instructor(*, post: bool) -> tuple[EmbedGrant, str]:
    if post and "token" in request.args:
        raise BadRequest("send the token in the form body, not in the URL")
    grant, token = grant_from_request()
    if not grant.instructor:
        raise Forbidden("the rules page needs an instructor token")
    return grant, token


def _tokens(path: str) -> list[str | int]:
    return [int(i) if i else k for k, i in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]


def line_of(text: str, path: str) -> int | None:
    """The 1-based line of ``path`` (``badges[2].criteria.count``) in the YAML ``text``: the
    deepest part of the path that exists, so a missing key points at its parent."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)  # nodes only: nothing is built
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return mark.line + 1 if mark is not None else None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in _tokens(path) if path != "$" else []:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, _ in node.value if k.value == part), None)
            if key is not None:
                line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
            if child is not None:
                line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def check_text(text: str, course: str | None) -> tuple[Any, list[RuleError]]:
    """(document, errors): the parsed document (None when unreadable) and every error of the
    rules checker, each with its path and line."""
    if len(text.encode()) > MAX_DOCUMENT_BYTES:
        return None, [RuleError("$", f"a rule document is at most {MAX_DOCUMENT_BYTES} bytes", 1)]
    if not text.strip():
        return None, [RuleError("$", "the rule set is empty: write it in YAML", 1)]
    try:
        document = read_document(text)
        parse_rules(document, scope="course" if course else "tenant")
    except InvalidRules as exc:
        errors = []
        for raw in exc.errors:
            path, _, message = raw.partition(": ")
            errors.append(RuleError(path, message, line_of(text, path)))
        return None, errors
    return document, []


def _text() -> str:
    text = request.form.get("document")
    if text is None:
        raise BadRequest("document is required: the rule set as YAML")
    return text.replace("\r\n", "\n")


def _current(grant: EmbedGrant) -> tuple[str, int | None, list[Any]]:
    """The active document as YAML (a starter when the course has none), its version, and the
    version history (newest first, at most 10)."""
    with ctx().db.sessions() as session:
        found = versions(session, grant.tenant_id, grant.course)
    active = next((v for v in found if v.active), None)
    if active is None:
        return STARTER, None, found[:10]
    text = yaml.safe_dump(active.document, sort_keys=False, allow_unicode=True, width=100)
    return text, active.version, found[:10]


def _page(
    grant: EmbedGrant,
    token: str,
    *,
    text: str | None = None,
    errors: list[RuleError] | None = None,
    report: SimulationReport | None = None,
    window: str = DEFAULT_WINDOW,
    status: int = 200,
    checked: bool = False,
    problem: str = "",
) -> Response:
    current, version, history = _current(grant)
    changes = []
    if report is not None:
        changes = sorted(
            report.changes, key=lambda c: (-abs(c.xp_after - c.xp_before), c.player_id)
        )[:MAX_CHANGES_SHOWN]
    html = render_template(
        "widgets/instructor_rules.html",
        grant=grant,
        token=token,
        text=current if text is None else text,
        version=version,
        history=history,
        errors=errors or [],
        report=report,
        changes=changes,
        shown=MAX_CHANGES_SHOWN,
        windows=list(WINDOWS),
        window=window,
        checked=checked,
        problem=problem,
        done=request.args.get("done"),
        done_version=request.args.get("version", type=int),
    )
    return Response(html, status=status, mimetype="text/html")


@bp.get("")
def rules_page() -> Response:
    grant, token = _instructor(post=False)
    return _page(grant, token)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


@bp.post("/check")
def check() -> Any:
    """Validate the form's document: JSON for the live check, the page for a plain submit."""
    grant, token = _instructor(post=True)
    text = _text()
    _, errors = check_text(text, grant.course)
    if _wants_json():
        body = {"ok": not errors, "errors": [e.as_dict() for e in errors]}
        return jsonify(body), 422 if errors else 200
    status = 422 if errors else 200
    return _page(grant, token, text=text, errors=errors, status=status, checked=True)


def _window() -> tuple[str, datetime | None]:
    window = request.form.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        raise BadRequest(f"window must be one of {', '.join(WINDOWS)}")
    return window, datetime.now(UTC) - timedelta(days=WINDOWS[window])


@bp.post("/simulate")
def simulate_page() -> Response:
    """Replay the course's stored events of the window under the active rules and under the
    form's document; show the XP, level and badge differences per player. Writes nothing."""
    grant, token = _instructor(post=True)
    text = _text()
    window, since = _window()
    document, errors = check_text(text, grant.course)
    if errors:
        return _page(grant, token, text=text, errors=errors, window=window, status=422)
    with ctx().db.sessions() as session:
        total = count_history(session, grant.tenant_id, since=since, course=grant.course)
        if total > MAX_SIMULATE_EVENTS:
            problem = _(
                "The last %(window)s hold %(total)s events, more than this page replays "
                "(%(limit)s): choose a shorter window, or ask an administrator to run "
                "`questline rules simulate`.",
                window=window,
                total=total,
                limit=MAX_SIMULATE_EVENTS,
            )
            return _page(grant, token, text=text, window=window, problem=problem, status=422)
        try:
            report = simulate(session, grant.tenant_id, document, course=grant.course, since=since)
        finally:
            session.rollback()  # a simulation writes nothing; make sure of it
    return _page(grant, token, text=text, report=report, window=window)


@bp.post("/activate")
def activate() -> Response:
    """Store the document as a new version and activate it; with ``retro=1`` also re-score
    history under it (idempotent, audit-logged), then rebuild the tenant's boards."""
    grant, token = _instructor(post=True)
    text = _text()
    retro = request.form.get("retro", "0")
    if retro not in ("0", "1"):
        raise BadRequest("retro must be 1 or 0")
    document, errors = check_text(text, grant.course)
    if errors:
        return _page(grant, token, text=text, errors=errors, status=422)
    actor = f"instructor:{grant.player_id}" if grant.player_id is not None else "instructor"
    if retro == "1":
        with ctx().db.sessions() as session:
            total = count_history(session, grant.tenant_id, since=None, course=None)
        if total > MAX_RETRO_EVENTS:
            problem = _(
                "Retro would replay %(total)s events, more than this page does (%(limit)s): "
                "activate without retro, and ask an administrator to run "
                "`questline rules load --retro`.",
                total=total,
                limit=MAX_RETRO_EVENTS,
            )
            return _page(grant, token, text=text, problem=problem, status=422)
    with ctx().db.session() as session:
        version = store_version(
            session, grant.tenant_id, document, course=grant.course, actor=actor
        )
        if retro == "1":
            retro_apply(session, grant.tenant_id, version=version, course=grant.course, actor=actor)
    if retro == "1":
        _rebuild_boards(grant.tenant_id)
    done = "retro" if retro == "1" else "activated"
    return redirect(url_for(".rules_page", token=token, done=done, version=version), 303)


def _rebuild_boards(tenant_id: int) -> None:
    """Boards are derived from PostgreSQL: after a re-score, rebuild this tenant's. Redis down
    is not an error here (the truth is saved; ``questline reconcile`` repairs the boards)."""
    from questline.reconcile import reconcile

    context = ctx()
    try:
        reconcile(context.db, context.boards, tenant_id)
    except Exception:  # Redis down: the ledger is already right
        import logging

        logging.getLogger("questline.widgets").warning(
            "boards not rebuilt after retro; run questline reconcile", exc_info=True
        )
