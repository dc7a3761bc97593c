"""Operator endpoints: ``/healthz`` (database and Redis status) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import func, select

from questline import metrics
from questline.db import pairs
from questline.models import InboxEvent

log = logging.getLogger("questline.ops")
bp = Blueprint("ops", __name__)


def _ctx() -> Any:
    return current_app.extensions["questline"]


@bp.get("/healthz")
def healthz() -> Any:
    ctx = _ctx()
    checks: dict[str, dict[str, Any]] = {}
    try:
        ctx.db.ping()
        checks["database"] = {"ok": True, "dialect": ctx.db.dialect}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        ctx.redis.ping()
        checks["redis"] = {"ok": True, "embedded": ctx.settings.embedded}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
    ok = all(check["ok"] for check in checks.values())
    return jsonify({"status": "ok" if ok else "degraded", **checks}), 200 if ok else 503


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    ctx = _ctx()
    lines: list[str] = []
    try:
        with ctx.db.sessions() as session:
            counts = pairs(
                session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status))
            )
        lines += [
            "# HELP questline_inbox_events Inbox rows by status (pending = queue depth).",
            "# TYPE questline_inbox_events gauge",
        ]
        for status in ("pending", "applied", "failed"):
            lines.append(f'questline_inbox_events{{status="{status}"}} {counts.get(status, 0)}')
    except Exception:
        log.warning("metrics: inbox counts unavailable", exc_info=True)
    try:
        depth = ctx.dispatcher.depth()
        lines += [
            "# HELP questline_queue_jobs Wake-up jobs waiting in the RQ queue.",
            "# TYPE questline_queue_jobs gauge",
            f"questline_queue_jobs {depth}",
        ]
    except Exception:
        log.warning("metrics: queue depth unavailable", exc_info=True)
    body, content_type = metrics.render(lines)
    return Response(body, content_type=content_type)
