"""The JSON API: ingest (``POST /api/v1/events``) and the first reads (players, boards)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from questline import metrics
from questline.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
)
from questline.ingest import IngestReport, store_events, validate_items
from questline.leaderboards import UnknownBoard, validate_board
from questline.repository import TenantRepository, player_json
from questline.tenants import KEY_PREFIX
from workers.context import Context

log = logging.getLogger("questline.api")
bp = Blueprint("api", __name__, url_prefix="/api/v1")


def ctx() -> Context:
    return current_app.extensions["questline"]  # type: ignore[no-any-return]


def authenticate(scope: str = "questline:read") -> int:
    """The caller's tenant, or 401/403: a tenant API key (full access), or a client-credentials
    access token from the tenant's identity provider carrying ``scope`` (or questline:admin)."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("send the tenant API key as 'Authorization: Bearer <key>'")
    keys = current_app.extensions["questline_keys"]
    tenant_id = keys.cached(key) if key.startswith(KEY_PREFIX) else None
    if tenant_id is not None:
        g.tenant_id = tenant_id
        return tenant_id
    with ctx().db.sessions() as session:
        if key.startswith(KEY_PREFIX):
            tenant_id = keys.tenant_for(session, key)
        else:
            from identity.auth import _identity_state, validate_access_token

            token = validate_access_token(session, key, _identity_state().oidc)
            if not ({scope, "questline:admin"} & token.scopes):
                raise Forbidden(f"this access token lacks the scope {scope}")
            tenant_id = token.tenant_id
    if tenant_id is None:
        raise Unauthorized("unknown or revoked API key")
    g.tenant_id = tenant_id
    return int(tenant_id)


def _read_items() -> tuple[list[Any], bool, bool]:
    """The request's events as a list, whether the caller sent a batch, and whether the body is
    free of NUL characters (JSON can only carry one as the escape \\u0000, so one look at the
    bytes spares walking every value of every event)."""
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise
    if not body.strip():
        raise BadRequest("the request body is empty; send one event or a batch as JSON")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    # A raw zero byte means UTF-16/32 (json.loads takes those too): then look the slow way.
    nul_free = b"\\u0000" not in body and b"\x00" not in body
    if isinstance(data, list):
        return data, True, nul_free
    if isinstance(data, dict) and "events" in data:
        if not isinstance(data["events"], list):
            raise Unprocessable(
                "events must be a list", details=[{"field": "events", "message": "must be a list"}]
            )
        return data["events"], True, nul_free
    if isinstance(data, dict):
        return [data], False, nul_free
    raise Unprocessable('send an event object, a list of events, or {"events": [...]}')


@bp.post("/events")
def ingest() -> Any:
    started = time.perf_counter()
    tenant_id = authenticate("questline:events")
    items, batch, nul_free = _read_items()
    limit = ctx().settings.max_batch
    if len(items) > limit:
        raise PayloadTooLarge(f"a batch holds at most {limit} events; this one has {len(items)}")
    if batch and not items:
        raise Unprocessable("the batch is empty")

    report = IngestReport()
    valid = validate_items(items, report, nul_free=nul_free)
    if not batch and report.rejected:
        errors = report.rejected[0].errors
        metrics.EVENTS_REJECTED.inc()
        raise Unprocessable(
            "invalid event: " + "; ".join(f"{e['field']} {e['message']}" for e in errors),
            details=errors,
        )
    if valid:
        with ctx().db.autocommit() as conn:
            store_events(conn, tenant_id, valid, datetime.now(UTC), report, nul_free=nul_free)
    # Stored and committed: only now may anything be acknowledged or enqueued.
    if report.inbox_ids:
        try:
            ctx().dispatcher.wake()
        except Exception:
            # The rows are durable; the scheduler's sweep wakes a worker for them later.
            log.error(
                "could not wake workers; events wait for the sweep",
                exc_info=True,
                extra={"tenant_id": tenant_id, "events": len(report.inbox_ids)},
            )
    for source, n in report.sources.items():
        metrics.EVENTS_RECEIVED.labels(source=source).inc(n)
    if report.duplicates:
        metrics.EVENTS_DUPLICATE.inc(len(report.duplicates))
    if report.rejected:
        metrics.EVENTS_REJECTED.inc(len(report.rejected))
    metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
    if report.rejected and not valid:
        return jsonify({"message": "no event in the batch was valid", **report.as_dict()}), 422
    log.debug("ingested", extra={"tenant_id": tenant_id, "accepted": len(report.accepted)})
    return jsonify(report.as_dict()), 202


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


@bp.get("/players/<int:player_id>")
def get_player(player_id: int) -> Any:
    tenant_id = authenticate()
    from questline.awards import player_badges
    from workers.rulesets import active_rules

    with ctx().db.sessions() as session:
        repo = TenantRepository(session, tenant_id)
        player = repo.player(player_id)
        if player is None:
            raise NotFound(f"no player {player_id} in this tenant")
        curve = active_rules(session, tenant_id).levels
        badges = player_badges(session, tenant_id, player_id, now=datetime.now(UTC))
    rank = _rank(tenant_id, player_id)
    return jsonify(
        player_json(player, next_level_xp=curve.xp_for(player.level + 1), rank=rank, badges=badges)
    )


def _rank(tenant_id: int, player_id: int) -> int | None:
    try:
        rank = ctx().boards.client.zrevrank(ctx().boards.key(tenant_id, "tenant"), str(player_id))
    except Exception:
        log.warning("rank unavailable: redis read failed", exc_info=True)
        return None
    return None if rank is None else int(rank) + 1


@bp.get("/players")
def find_players() -> Any:
    tenant_id = authenticate()
    actor = request.args.get("actor", "").strip()
    if not actor:
        raise BadRequest("give ?actor=<external id or email>")
    with ctx().db.sessions() as session:
        players = TenantRepository(session, tenant_id).players_by_actor(actor)
    if not players:
        raise NotFound(f"no player known as {actor!r} in this tenant")
    return jsonify(
        {
            "players": [
                {"id": p.id, "display_name": p.display_name, "xp": p.xp, "level": p.level}
                for p in players
            ]
        }
    )


@bp.get("/leaderboards/<path:board>")
def leaderboard(board: str) -> Any:
    tenant_id = authenticate()
    try:
        validate_board(board)
    except UnknownBoard:
        raise NotFound(
            f"no board {board!r}: boards are 'tenant' and 'course:<course id>'"
        ) from None
    limit = _int_arg("limit", 10, 1, 100)
    around = _int_arg("around", None, 1, 2**63 - 1)
    assert limit is not None
    source, stale = "redis", False
    with ctx().db.sessions() as session:
        repo = TenantRepository(session, tenant_id)
        if around is not None and repo.player(around) is None:
            raise NotFound(f"no player {around} in this tenant")
        try:
            entries, total, my_rank = ctx().boards.page(
                tenant_id, board, limit=limit, around=around
            )
        except Exception:
            # Reads degrade: the board is derived, PostgreSQL has the truth.
            log.warning(
                "board read from database: redis unavailable",
                exc_info=True,
                extra={"tenant_id": tenant_id},
            )
            entries, total, my_rank = repo.board_from_database(board, limit=limit, around=around)
            source, stale = "database", True
        names = repo.names([pid for _, pid, _ in entries])
    return jsonify(
        {
            "board": board,
            "total": total,
            "source": source,
            "degraded": stale,
            "around": around,
            "around_rank": my_rank,
            "entries": [
                {"rank": rank, "player_id": pid, "display_name": names.get(pid, ""), "xp": xp}
                for rank, pid, xp in entries
            ],
        }
    )


@bp.delete("/players/<int:player_id>")
def erase_player(player_id: int) -> Any:
    """Erase a player's personal data, keep anonymised aggregates (issue 8: identity/privacy.py)."""
    from identity.api import erase_player_route

    return erase_player_route(player_id)
