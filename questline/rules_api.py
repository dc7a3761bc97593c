"""The admin API for rule sets (tenant API key): read, check, write and activate versions; and
the awards API: a player's badges, revoking one with a reason, the activity feed.

``PUT`` takes the document as JSON, or as YAML with a ``Content-Type`` of ``application/yaml``
(or ``text/yaml``). Every validation error comes back in one 422 with its path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request

from engine.rules import DEFAULT_RULES, InvalidRules, parse_rules
from questline.api import authenticate, ctx
from questline.errors import BadRequest, NotFound, Unprocessable

bp = Blueprint("rules_api", __name__, url_prefix="/api/v1")

MAX_DOCUMENT_BYTES = 256 * 1024


def _invalid(exc: InvalidRules) -> Unprocessable:
    details = []
    for error in exc.errors:
        path, _, message = error.partition(": ")
        details.append({"path": path, "message": message})
    return Unprocessable(f"the rule set has {len(exc.errors)} error(s)", details=details)


def _document() -> Any:
    """The request body as a rule document (JSON or YAML)."""
    from workers.rulesets import read_document

    body = request.get_data(cache=False)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise BadRequest(f"a rule document is at most {MAX_DOCUMENT_BYTES} bytes")
    if not body.strip():
        raise BadRequest("send the rule document as JSON or YAML")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the rule document must be UTF-8 text") from None
    try:
        return read_document(text)
    except InvalidRules as exc:
        raise _invalid(exc) from None


def _actor() -> str:
    header = request.headers.get("Authorization", "")
    return "api:" + header.partition(" ")[2].strip()[:10]


@bp.get("/rules")
def list_active() -> Any:
    from workers.rulesets import active_sets

    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        found = active_sets(session, tenant_id)
    return jsonify({"rule_sets": [v.as_dict() for v in found]})


@bp.post("/rules/check")
def check() -> Any:
    authenticate()
    scope = request.args.get("scope", "tenant")
    if scope not in ("tenant", "course"):
        raise BadRequest("scope must be tenant or course")
    try:
        ruleset = parse_rules(_document(), scope=scope)  # type: ignore[arg-type]
    except InvalidRules as exc:
        raise _invalid(exc) from None
    return jsonify(
        {
            "ok": True,
            "xp_rules": len(ruleset.xp),
            "multipliers": len(ruleset.multipliers),
            "badges": len(ruleset.badges),
        }
    )


def _active(course: str | None) -> Any:
    from workers.rulesets import versions

    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        active = [v for v in versions(session, tenant_id, course) if v.active]
    if active:
        return jsonify(active[0].as_dict())
    if course is None:
        return jsonify(
            {
                "course": None,
                "version": None,
                "active": True,
                "default": True,
                "document": DEFAULT_RULES,
            }
        )
    raise NotFound(f"course {course!r} has no active rule set; the tenant's rules apply")


def _versions(course: str | None) -> Any:
    from workers.rulesets import versions

    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        found = versions(session, tenant_id, course)
    return jsonify({"course": course, "versions": [v.as_dict() for v in found]})


def _put(course: str | None) -> Any:
    from workers.rulesets import store_version

    tenant_id = authenticate()
    document = _document()
    activate = request.args.get("activate", "true").lower() not in ("false", "0", "no")
    try:
        with ctx().db.session() as session:
            version = store_version(
                session, tenant_id, document, course=course, actor=_actor(), activate=activate
            )
    except InvalidRules as exc:
        raise _invalid(exc) from None
    return jsonify({"course": course, "version": version, "active": activate}), 201


def _activate(course: str | None, version: int) -> Any:
    from workers.rulesets import activate_version

    tenant_id = authenticate()
    try:
        with ctx().db.session() as session:
            activate_version(session, tenant_id, version, course=course, actor=_actor())
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    return jsonify({"course": course, "version": version, "active": True})


@bp.get("/rules/tenant")
def tenant_active() -> Any:
    return _active(None)


@bp.get("/rules/tenant/versions")
def tenant_versions() -> Any:
    return _versions(None)


@bp.put("/rules/tenant")
def tenant_put() -> Any:
    return _put(None)


@bp.post("/rules/tenant/versions/<int:version>/activate")
def tenant_activate(version: int) -> Any:
    return _activate(None, version)


@bp.get("/rules/courses/<path:course>/versions")
def course_versions(course: str) -> Any:
    return _versions(course)


@bp.post("/rules/courses/<path:course>/versions/<int:version>/activate")
def course_activate(course: str, version: int) -> Any:
    return _activate(course, version)


@bp.get("/rules/courses/<path:course>")
def course_active(course: str) -> Any:
    return _active(course)


@bp.put("/rules/courses/<path:course>")
def course_put(course: str) -> Any:
    if len(course) > 255:
        raise BadRequest("a course id is at most 255 characters")
    return _put(course)


# --- awards ----------------------------------------------------------------------------------


def _player(session: Any, tenant_id: int, player_id: int) -> None:
    from questline.awards import player_exists

    if not player_exists(session, tenant_id, player_id):
        raise NotFound(f"no player {player_id} in this tenant")


@bp.get("/players/<int:player_id>/badges")
def badges(player_id: int) -> Any:
    """Badges in force; ``?all=true`` adds revoked and expired ones."""
    from questline.awards import player_badges

    tenant_id = authenticate()
    everything = request.args.get("all", "").lower() in ("1", "true", "yes")
    with ctx().db.sessions() as session:
        _player(session, tenant_id, player_id)
        found = player_badges(
            session, tenant_id, player_id, now=datetime.now(UTC), everything=everything
        )
    return jsonify({"player_id": player_id, "badges": found})


@bp.post("/players/<int:player_id>/badges/<int:award_id>/revoke")
def revoke(player_id: int, award_id: int) -> Any:
    """Revoke an award; the JSON body must give a ``reason``."""
    from questline.awards import revoke_badge

    tenant_id = authenticate()
    body = request.get_json(silent=True)
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        raise Unprocessable(
            "give the reason for revoking",
            details=[{"field": "reason", "message": "is required"}],
        )
    if len(reason) > 2000:
        raise Unprocessable("the reason is at most 2000 characters")
    with ctx().db.session() as session:
        _player(session, tenant_id, player_id)
        found = revoke_badge(
            session,
            tenant_id,
            player_id,
            award_id,
            reason=reason.strip(),
            actor=_actor(),
            now=datetime.now(UTC),
        )
    if found is None:
        raise NotFound(f"player {player_id} has no award {award_id}")
    return jsonify(found)


@bp.get("/players/<int:player_id>/activity")
def player_activity(player_id: int) -> Any:
    """The newest XP awards and badges, each with its explanation (``?limit=``, at most 200)."""
    from questline.awards import activity

    tenant_id = authenticate()
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise BadRequest("limit must be an integer between 1 and 200")
    with ctx().db.sessions() as session:
        _player(session, tenant_id, player_id)
        items = activity(session, tenant_id, player_id, limit=int(raw))
    return jsonify({"player_id": player_id, "items": items})


@bp.get("/players/<int:player_id>/inventory")
def player_inventory(player_id: int) -> Any:
    from questline.inventory import inventory

    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        _player(session, tenant_id, player_id)
        items = inventory(session, tenant_id, player_id)
    return jsonify({"player_id": player_id, "items": items})


@bp.post("/players/<int:player_id>/inventory")
def grant_item(player_id: int) -> Any:
    """An admin grant: ``{"item": "streak_freeze", "quantity": 1}``."""
    from questline.inventory import add_item, grant_json, lock_player

    tenant_id = authenticate()
    try:
        item, quantity = grant_json(request.get_json(silent=True))
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
    with ctx().db.session() as session:
        if not lock_player(session, tenant_id, player_id):
            raise NotFound(f"no player {player_id} in this tenant")
        total = add_item(session, tenant_id, player_id, item, quantity)
    return jsonify({"player_id": player_id, "item": item, "quantity": total})
