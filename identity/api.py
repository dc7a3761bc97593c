"""The identity JSON API: the caller's own profile, SSO settings, links, merges, roles, privacy.

Every route starts from ``principal()`` (tenant API key, client-credentials token or SSO
session) and every query filters by the principal's tenant, so another tenant's player is simply
not found (404); a role that may not do something gets 403.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from identity.auth import Principal, can_read_player, principal, require_json_for_session_writes
from identity.config import config_json, configure_sso, sso_config
from identity.courses import course_roster
from identity.errors import Forbidden
from identity.linking import audit, identities_json, link_identity, unlink_identity
from identity.merge import merge_players
from identity.models import IdentityAudit, PlayerRole
from identity.privacy import erase_player, export_player
from questline.errors import BadRequest, NotFound
from questline.models import Player
from workers.context import Context

log = logging.getLogger("questline.identity")
bp = Blueprint("identity_api", __name__, url_prefix="/api/v1")
ROLES = ("admin", "instructor")


def ctx() -> Context:
    return current_app.extensions["questline"]  # type: ignore[no-any-return]


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("send a JSON object with Content-Type: application/json")
    return data


def _admin_write() -> Principal:
    who = principal()
    who.require_admin()
    require_json_for_session_writes(who)
    return who


def _int_field(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadRequest(f"{name} must be a positive integer player id")
    return value


@bp.get("/me")
def me() -> Any:
    who = principal()
    if who.player_id is None:
        raise BadRequest("an API key or service token has no player; use /players/<id>")
    from identity.views import profile

    return jsonify({**profile(who.tenant_id, who.player_id), "admin": who.admin})


@bp.get("/identity/players/<int:player_id>")
def player_identities(player_id: int) -> Any:
    who = principal()
    with ctx().db.sessions() as session:
        player = session.scalar(
            select(Player).where(Player.tenant_id == who.tenant_id, Player.id == player_id)
        )
        if player is None:
            raise NotFound(f"no player {player_id} in this tenant")
        can_read_player(session, who, player_id)
        out: dict[str, Any] = {
            "id": player.id,
            "display_name": player.display_name,
            "xp": player.xp,
            "level": player.level,
        }
        if who.admin or who.player_id == player_id:
            out["identities"] = identities_json(session, who.tenant_id, player_id)
    return jsonify(out)


@bp.get("/identity/courses/<path:course>/players")
def course_players(course: str) -> Any:
    """An instructor's class list: the course's players (XP earned in it, or on its LMS roster)
    with their course XP and level. Instructors of that course and admins only; the 403 comes
    before any lookup, so it says nothing about whether the course exists."""
    who = principal()
    if not (who.admin or course in who.courses):
        raise Forbidden("you may list only the players of courses you teach")
    with ctx().db.sessions() as session:
        players = course_roster(session, who.tenant_id, course)
    if not players and course not in who.courses:  # an admin asking about an unknown course
        raise NotFound(f"no course {course!r} with players in this tenant")
    return jsonify({"course": course, "players": players})


@bp.get("/identity/sso")
def get_sso() -> Any:
    who = principal()
    who.require_admin()
    with ctx().db.sessions() as session:
        config = sso_config(session, who.tenant_id)
        if config is None:
            raise NotFound("this tenant has no SSO configured")
        return jsonify(config_json(config))


@bp.put("/identity/sso")
def put_sso() -> Any:
    who = _admin_write()
    with ctx().db.session() as session:
        config = configure_sso(
            session,
            who.tenant_id,
            _body(),
            actor=who.name,
            secret_key=ctx().settings.secret_key,
        )
        return jsonify(config_json(config))


@bp.post("/identity/players/<int:player_id>/identities")
def post_identity(player_id: int) -> Any:
    who = _admin_write()
    data = _body()
    kind, value = data.get("kind"), data.get("value")
    if not isinstance(kind, str) or not isinstance(value, str):
        raise BadRequest('send {"kind": ..., "value": ...}')
    with ctx().db.session() as session:
        identity = link_identity(session, who.tenant_id, player_id, kind, value, actor=who.name)
        return jsonify({"id": identity.id, "kind": identity.kind, "value": identity.value}), 201


@bp.delete("/identity/players/<int:player_id>/identities/<int:identity_id>")
def delete_identity(player_id: int, identity_id: int) -> Any:
    who = principal()
    who.require_admin()
    with ctx().db.session() as session:
        unlink_identity(session, who.tenant_id, player_id, identity_id, actor=who.name)
    return "", 204


@bp.post("/identity/merge")
def merge() -> Any:
    who = _admin_write()
    data = _body()
    source, target = _int_field(data, "source"), _int_field(data, "target")
    with ctx().db.session() as session:
        result = merge_players(session, who.tenant_id, source, target, actor=who.name)
    if not result.already_merged or any(result.moved.values()):
        _rebuild_boards(who.tenant_id)
    return jsonify(
        {
            "source": result.source,
            "target": result.target,
            "already_merged": result.already_merged,
            "moved": result.moved,
            "kept_on_source": result.kept_on_source,
        }
    )


def _rebuild_boards(tenant_id: int) -> None:
    """Boards are derived: rebuild this tenant's from the ledger. If Redis is down the merge
    stands and ``questline reconcile`` fixes the boards later."""
    from questline.reconcile import reconcile

    try:
        reconcile(ctx().db, ctx().boards, tenant_id)
    except Exception:
        log.error("boards not rebuilt after merge", exc_info=True, extra={"tenant_id": tenant_id})


@bp.put("/identity/players/<int:player_id>/roles")
def put_role(player_id: int) -> Any:
    who = _admin_write()
    role, scope = _role_body()
    with ctx().db.session() as session:
        _must_exist(session, who.tenant_id, player_id)
        exists = session.scalar(
            select(PlayerRole.id).filter_by(
                tenant_id=who.tenant_id, player_id=player_id, role=role, scope=scope
            )
        )
        if exists is None:
            session.add(
                PlayerRole(tenant_id=who.tenant_id, player_id=player_id, role=role, scope=scope)
            )
            audit(session, who.tenant_id, "grant_role", who.name, player_id, role=role, scope=scope)
    return jsonify({"player_id": player_id, "role": role, "scope": scope})


@bp.delete("/identity/players/<int:player_id>/roles")
def delete_role(player_id: int) -> Any:
    who = _admin_write()
    role, scope = _role_body()
    with ctx().db.session() as session:
        row = session.scalar(
            select(PlayerRole).filter_by(
                tenant_id=who.tenant_id, player_id=player_id, role=role, scope=scope
            )
        )
        if row is None:
            raise NotFound(f"player {player_id} has no {role} role for {scope}")
        session.delete(row)
        audit(session, who.tenant_id, "revoke_role", who.name, player_id, role=role, scope=scope)
    return "", 204


def _role_body() -> tuple[str, str]:
    data = _body()
    role = data.get("role")
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    scope = data.get("course") if role == "instructor" else "*"
    if not isinstance(scope, str) or not scope.strip():
        raise BadRequest("an instructor role needs a course")
    return str(role), scope.strip()


def _must_exist(session: Any, tenant_id: int, player_id: int) -> None:
    found = session.scalar(
        select(Player.id).where(Player.tenant_id == tenant_id, Player.id == player_id)
    )
    if found is None:
        raise NotFound(f"no player {player_id} in this tenant")


@bp.get("/identity/audit")
def get_audit() -> Any:
    who = principal()
    who.require_admin()
    with ctx().db.sessions() as session:
        rows = session.scalars(
            select(IdentityAudit)
            .where(IdentityAudit.tenant_id == who.tenant_id)
            .order_by(IdentityAudit.id.desc())
            .limit(200)
        ).all()
        return jsonify(
            {
                "entries": [
                    {
                        "action": a.action,
                        "actor": a.actor,
                        "player_id": a.player_id,
                        "detail": a.detail,
                        "at": a.created_at.isoformat(),
                    }
                    for a in rows
                ]
            }
        )


@bp.get("/identity/players/<int:player_id>/export")
def export(player_id: int) -> Any:
    who = principal()
    with ctx().db.sessions() as session:
        _must_exist(session, who.tenant_id, player_id)
        if not (who.admin or who.player_id == player_id):
            raise Forbidden("you may export only your own data")
        return jsonify(export_player(session, who.tenant_id, player_id))


def erase_player_route(player_id: int) -> Any:
    """``DELETE /api/v1/players/<id>`` (mounted in questline/api.py): admins only."""
    who = principal()
    who.require_admin()
    with ctx().db.session() as session:
        result = erase_player(session, who.tenant_id, player_id, actor=who.name)
    return jsonify({"player_id": player_id, "erased": True, **result})
