"""The instructor dashboard: the roster (XP, level, streak, badges) with a CSV export, and badge
awards and revocations with a reason. Reached by an embed token with the instructor role (minted
by the API, or by the LTI launch for an instructor); a ``course`` in the token narrows the
roster to that course's players.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from questline.api import ctx
from questline.awards import player_badges, revoke_badge
from questline.errors import BadRequest, Forbidden, NotFound, QuestlineError
from questline.models import Player, PlayerBadge, PlayerCourseStats
from questline.repository import TenantRepository
from widgets.analytics import bp as analytics_bp
from widgets.rules_page import bp as rules_bp
from widgets.signing import EmbedGrant
from widgets.views import grant_from_request
from workers.rulesets import active_rules

bp = Blueprint("instructor", __name__, url_prefix="/widgets/instructor")
bp.register_blueprint(rules_bp)  # /widgets/instructor/rules
bp.register_blueprint(analytics_bp)  # /widgets/instructor/analytics
ROSTER_LIMIT = 1000
MAX_REASON = 500


class Conflict(QuestlineError):
    status, code = 409, "conflict"


def _instructor() -> tuple[EmbedGrant, str]:
    grant, token = grant_from_request()
    if not grant.instructor:
        raise Forbidden("the instructor dashboard needs an instructor token")
    return grant, token


def roster(session: Session, grant: EmbedGrant) -> list[dict[str, Any]]:
    """Players by XP (course XP when the token names a course), with their badge counts."""
    badges = (
        select(PlayerBadge.player_id, func.count().label("n"))
        .where(PlayerBadge.tenant_id == grant.tenant_id, PlayerBadge.revoked_at.is_(None))
        .group_by(PlayerBadge.player_id)
        .subquery()
    )
    columns = [
        Player.id,
        Player.display_name,
        Player.xp,
        Player.level,
        Player.streak_current,
        Player.streak_longest,
        func.coalesce(badges.c.n, 0),
    ]
    stmt = select(*columns).where(Player.tenant_id == grant.tenant_id)
    if grant.course:
        stmt = select(*columns, PlayerCourseStats.xp).join(
            PlayerCourseStats,
            (PlayerCourseStats.player_id == Player.id)
            & (PlayerCourseStats.tenant_id == grant.tenant_id)
            & (PlayerCourseStats.course == grant.course),
        )
        stmt = stmt.where(Player.tenant_id == grant.tenant_id).order_by(
            PlayerCourseStats.xp.desc(), Player.id
        )
    else:
        stmt = stmt.order_by(Player.xp.desc(), Player.id)
    stmt = stmt.outerjoin(badges, badges.c.player_id == Player.id).limit(ROSTER_LIMIT)
    out = []
    for row in session.execute(stmt):
        pid, name, xp, level, streak, longest, n, *course_xp = row
        out.append(
            {
                "id": pid,
                "name": name,
                "xp": xp,
                "course_xp": course_xp[0] if course_xp else None,
                "level": level,
                "streak": streak,
                "longest": longest,
                "badges": int(n),
            }
        )
    return out


@bp.get("")
def dashboard() -> Any:
    grant, token = _instructor()
    with ctx().db.sessions() as session:
        players = roster(session, grant)
    return render_template(
        "widgets/instructor.html", players=players, grant=grant, token=token, limit=ROSTER_LIMIT
    )


def _cell(value: Any) -> Any:
    """Spreadsheet-safe: text that a spreadsheet would run as a formula is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/roster.csv")
def roster_csv() -> Any:
    grant, _ = _instructor()
    with ctx().db.sessions() as session:
        players = roster(session, grant)
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["player_id", "name", "xp", "level", "streak", "longest_streak", "badges"]
    writer.writerow([*header, "course_xp"] if grant.course else header)
    for p in players:
        line = [p["id"], _cell(p["name"]), p["xp"], p["level"], p["streak"], p["longest"]]
        line.append(p["badges"])
        writer.writerow([*line, p["course_xp"]] if grant.course else line)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="roster.csv"'},
    )


def _player(session: Session, grant: EmbedGrant, player_id: int) -> Player:
    player = TenantRepository(session, grant.tenant_id).player(player_id)
    if player is None:
        raise NotFound(f"no player {player_id} in this tenant")
    return player


@bp.get("/players/<int:player_id>")
def player_page(player_id: int) -> Any:
    grant, token = _instructor()
    now = datetime.now(UTC)
    with ctx().db.sessions() as session:
        player = _player(session, grant, player_id)
        badges = player_badges(session, grant.tenant_id, player_id, now=now, everything=True)
        catalogue = [(b.id, b.name) for b in active_rules(session, grant.tenant_id).badges]
    return render_template(
        "widgets/instructor_player.html",
        player=player,
        badges=badges,
        catalogue=catalogue,
        token=token,
        done=request.args.get("done"),
    )


def _reason() -> str:
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        raise BadRequest("reason is required: say why, the learner and auditors will see it")
    if len(reason) > MAX_REASON:
        raise BadRequest(f"reason must be at most {MAX_REASON} characters")
    return reason


def _actor(grant: EmbedGrant) -> str:
    return f"instructor:{grant.player_id}" if grant.player_id is not None else "instructor"


def _back(player_id: int, token: str, done: str) -> Any:
    return redirect(url_for(".player_page", player_id=player_id, token=token, done=done), 303)


@bp.post("/players/<int:player_id>/revoke")
def revoke(player_id: int) -> Any:
    grant, token = _instructor()
    reason = _reason()
    try:
        award_id = int(request.form.get("award_id", ""))
    except ValueError:
        raise BadRequest("award_id must be an integer") from None
    with ctx().db.session() as session:
        _player(session, grant, player_id)
        revoked = revoke_badge(
            session,
            grant.tenant_id,
            player_id,
            award_id,
            reason=reason,
            actor=_actor(grant),
            now=datetime.now(UTC),
        )
    if revoked is None:
        raise NotFound(f"no badge award {award_id} for player {player_id}")
    return _back(player_id, token, "revoked")


@bp.post("/players/<int:player_id>/award")
def award(player_id: int) -> Any:
    """Award the next tier of a badge from the active rules, by hand, with a reason."""
    grant, token = _instructor()
    reason = _reason()
    badge_id = request.form.get("badge_id", "")
    now = datetime.now(UTC)
    with ctx().db.session() as session:
        _player(session, grant, player_id)
        badge = next(
            (b for b in active_rules(session, grant.tenant_id).badges if b.id == badge_id), None
        )
        if badge is None:
            raise BadRequest(f"badge_id {badge_id!r} is not a badge of the active rules")
        held = session.scalar(
            select(func.max(PlayerBadge.tier)).where(
                PlayerBadge.tenant_id == grant.tenant_id,
                PlayerBadge.player_id == player_id,
                PlayerBadge.badge_id == badge_id,
                PlayerBadge.scope == "*",
                PlayerBadge.revoked_at.is_(None),
            )
        )
        tier = 0 if held is None else held + 1
        if tier >= len(badge.tiers):
            raise Conflict(f"player {player_id} already holds every tier of {badge_id!r}")
        session.add(
            PlayerBadge(
                tenant_id=grant.tenant_id,
                player_id=player_id,
                idempotency_key=f"manual|{uuid.uuid4()}",
                badge_id=badge.id,
                name=badge.name,
                tier=tier,
                tier_name=badge.tiers[tier].name,
                scope="*",
                explanation=f"awarded by {_actor(grant)}: {reason}",
                awarded_at=now,
            )
        )
    return _back(player_id, token, "awarded")
