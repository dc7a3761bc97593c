"""The admin API for rule sets (tenant API key): read, check, write and activate versions; and
the awards API: a player's badges, revoking one with a reason, the activity feed.

``PUT`` takes the document as JSON, or as YAML with a ``Content-Type`` of ``application/yaml``
(or ``text/yaml``). Every validation error comes back in one 422 with its path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from flask import Blueprint, jsonify, request

from engine.rules import DEFAULT_RULES, InvalidRules, parse_rules
from questline.api import _int_arg, authenticate, ctx
from questline.errors import BadRequest, NotFound, QuestlineError, Unprocessable

bp = Blueprint("rules_api", __name__, url_prefix="/api/v1")


class Conflict(QuestlineError):
    """409: the request is valid but the state forbids it; ``code`` says why (for example
    ``insufficient_funds``, ``already_claimed``)."""

    status = 409

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


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
    limit = cast(int, _int_arg("limit", 50, 1, 200))
    with ctx().db.sessions() as session:
        _player(session, tenant_id, player_id)
        items = activity(session, tenant_id, player_id, limit=limit)
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


# --- currency, shop and quests ---------------------------------------------------------------


def _request_id(body: Any) -> str:
    """The client's idempotency key: the ``Idempotency-Key`` header or ``request_id``."""
    from questline.currency import REQUEST_ID_MAX

    value = request.headers.get("Idempotency-Key") or (
        body.get("request_id") if isinstance(body, dict) else None
    )
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= REQUEST_ID_MAX:
        raise Unprocessable(
            "send a request id (Idempotency-Key header or request_id) so a retry is safe",
            details=[{"field": "request_id", "message": f"1-{REQUEST_ID_MAX} characters"}],
        )
    return value.strip()


@bp.get("/shop")
def shop() -> Any:
    """The items of the tenant's shop (from the active tenant rule set)."""
    from workers.rulesets import active_rules

    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        rules = active_rules(session, tenant_id)
    return jsonify(
        {
            "items": [
                {
                    "id": i.id,
                    "name": i.name,
                    "description": i.description,
                    "price": i.price,
                    "item": i.item,
                    "quantity": i.quantity,
                    "limit": i.limit,
                }
                for i in rules.shop
            ]
        }
    )


@bp.get("/players/<int:player_id>/wallet")
def player_wallet(player_id: int) -> Any:
    """The coin balance and the newest ledger rows (``?limit=``, at most 200)."""
    from questline.currency import wallet

    tenant_id = authenticate()
    limit = cast(int, _int_arg("limit", 50, 1, 200))
    with ctx().db.sessions() as session:
        _player(session, tenant_id, player_id)
        found = wallet(session, tenant_id, player_id, limit=limit)
    return jsonify(found)


@bp.post("/players/<int:player_id>/wallet/grant")
def wallet_grant(player_id: int) -> Any:
    """An admin credit: ``{"amount": n, "reason": "...", "request_id": "..."}``."""
    from questline.currency import grant

    tenant_id = authenticate()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Unprocessable("send {amount, reason, request_id} as JSON")
    amount, reason = body.get("amount"), body.get("reason")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= 1_000_000:
        raise Unprocessable(
            "amount must be an integer from 1 to 1000000",
            details=[{"field": "amount", "message": "an integer from 1 to 1000000"}],
        )
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 500:
        raise Unprocessable(
            "give a reason (1-500 characters)",
            details=[{"field": "reason", "message": "is required"}],
        )
    request_id = _request_id(body)
    with ctx().db.session() as session:
        found = grant(
            session,
            tenant_id,
            player_id,
            amount,
            request_id=request_id,
            reason=reason.strip(),
            actor=_actor(),
        )
    if found is None:
        raise NotFound(f"no player {player_id} in this tenant")
    return jsonify(found)


@bp.post("/players/<int:player_id>/purchases")
def buy(player_id: int) -> Any:
    """Buy a shop item: ``{"item": "<shop item id>", "request_id": "..."}``. ``201`` for a new
    purchase, ``200`` with the same purchase for a repeated request id, ``409`` when the
    balance or a holding limit forbids it."""
    from engine.shop import PurchaseRefused
    from questline.currency import PurchaseConflict, purchase
    from workers.rulesets import active_rules

    tenant_id = authenticate()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Unprocessable("send {item, request_id} as JSON")
    item_id = body.get("item")
    if not isinstance(item_id, str) or not item_id:
        raise Unprocessable(
            "name the shop item to buy", details=[{"field": "item", "message": "is required"}]
        )
    request_id = _request_id(body)
    try:
        with ctx().db.session() as session:
            rules = active_rules(session, tenant_id)
            item = next((i for i in rules.shop if i.id == item_id), None)
            if item is None:
                raise NotFound(f"the shop has no item {item_id!r}")
            found = purchase(
                session,
                tenant_id,
                player_id,
                item,
                request_id,
                max_freezes=rules.streaks.max_freezes,
                now=datetime.now(UTC),
            )
            if found is None:
                raise NotFound(f"no player {player_id} in this tenant")
    except PurchaseRefused as exc:
        raise Conflict(exc.reason, code=exc.code) from None
    except PurchaseConflict as exc:
        raise Conflict(str(exc), code="request_id_reused") from None
    result, created = found
    return jsonify(result), 201 if created else 200


@bp.get("/players/<int:player_id>/quests")
def player_quests(player_id: int) -> Any:
    """Every quest with the player's live progress, completion and claim state."""
    from questline.quests import quest_status
    from workers.rulesets import active_rule_book

    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        rules = active_rule_book(session, tenant_id)
        found = quest_status(session, tenant_id, player_id, rules, datetime.now(UTC))
    if found is None:
        raise NotFound(f"no player {player_id} in this tenant")
    return jsonify({"player_id": player_id, "quests": found})


@bp.post("/players/<int:player_id>/quests/<quest_id>/claim")
def claim_quest(player_id: int, quest_id: str) -> Any:
    """Claim a completed quest's reward, once (``{"period": "2026-11-23"}`` for an earlier
    period; the current one by default)."""
    from questline.quests import ClaimRefused, claim
    from workers.process import write_boards
    from workers.rulesets import active_rule_book

    tenant_id = authenticate()
    body = request.get_json(silent=True) if request.data else {}
    period = body.get("period") if isinstance(body, dict) else None
    if period is not None and (not isinstance(period, str) or not 1 <= len(period) <= 32):
        raise Unprocessable(
            "period must be text such as 2026-11-23, 2026-W48 or dated",
            details=[{"field": "period", "message": "1-32 characters"}],
        )
    try:
        with ctx().db.session() as session:
            rules = active_rule_book(session, tenant_id)
            found = claim(session, tenant_id, player_id, quest_id, period, rules, datetime.now(UTC))
            if found is None:
                raise NotFound(f"no player {player_id} in this tenant")
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except ClaimRefused as exc:
        raise Conflict(str(exc), code=exc.code) from None
    result, boards = found
    write_boards(ctx().boards, boards)
    return jsonify(result), 201
