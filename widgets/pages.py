"""The home page: the demo tenant's leaderboard and one player's XP and level."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import select

from questline.models import Tenant
from questline.repository import TenantRepository
from widgets.instructor import bp as instructor_bp
from widgets.views import bp as embed_bp
from workers.rulesets import active_rules

bp = Blueprint("widgets", __name__, template_folder="templates")
# The embeddable learner widgets and the instructor dashboard (issue 7), nested so the app
# factory keeps registering one widgets blueprint.
embed_bp.register_blueprint(instructor_bp)
bp.register_blueprint(embed_bp)


@bp.get("/")
def home() -> Any:
    ctx = current_app.extensions["questline"]
    tenant_name = current_app.config.get("QUESTLINE_DEMO_TENANT")
    if not tenant_name:
        return render_template("index.html", demo=False)
    with ctx.db.sessions() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
        if tenant is None:
            return render_template("index.html", demo=False)
        repo = TenantRepository(session, tenant.id)
        try:
            entries, total, _ = ctx.boards.page(tenant.id, "tenant", limit=10)
            degraded = False
        except Exception:
            entries, total, _ = repo.board_from_database("tenant", limit=10, around=None)
            degraded = True
        names = repo.names([pid for _, pid, _ in entries])
        chosen = request.args.get("player", type=int) or (entries[0][1] if entries else None)
        player = repo.player(chosen) if chosen else None
        curve = active_rules(session, tenant.id).levels
        progress = None
        if player is not None:
            floor = curve.xp_for(player.level) or 0
            ceiling = curve.xp_for(player.level + 1)
            span = (ceiling - floor) if ceiling else 0
            progress = {
                "next": ceiling,
                "percent": round(100 * (player.xp - floor) / span) if span else 100,
            }
    return render_template(
        "index.html",
        demo=True,
        tenant=tenant,
        total=total,
        degraded=degraded,
        rows=[
            {"rank": r, "id": pid, "name": names.get(pid, ""), "xp": xp} for r, pid, xp in entries
        ],
        player=player,
        progress=progress,
    )
