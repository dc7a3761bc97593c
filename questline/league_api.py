"""The league and time-windowed board API for the widgets.

* ``GET/PUT /api/v1/leagues/config``: turn leagues on for the tenant or a course, tiers, sizes;
* ``GET /api/v1/leagues/standings?player=``: the player's cohort with zones, place, time left;
* ``GET /api/v1/leagues/history?player=``: the player's finished weeks;
* ``GET /api/v1/boards/<day|week|month|all>/<board>``: time-windowed boards (``?around=`` for
  "10 around me", ``?anonymise=1`` to hide everyone but ``?player=``);
* ``PUT /api/v1/players/<id>/board-preference``: ``{"opt_out": true}`` hides a player from others.

Every read is scoped to the API key's tenant. Standings and boards come from Redis and degrade to
PostgreSQL (the ledger) when Redis cannot answer (STYLE 8).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from flask import Blueprint, jsonify, request
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from engine.leagues import (
    DEFAULT_DEMOTE,
    DEFAULT_PROMOTE,
    LeagueConfig,
    LeagueConfigError,
    WindowKind,
    standings,
    time_left,
    week_window,
    window,
)
from questline.api import _int_arg, authenticate, ctx
from questline.errors import BadRequest, NotFound, Unprocessable
from questline.leaderboards import UnknownBoard, validate_board
from questline.league_models import (
    BoardPreference,
    League,
    LeagueMembership,
    LeagueResult,
)
from questline.league_repo import (
    GROUP_PREFIX,
    league_by_scope,
    league_config,
    league_xp,
    tenant_zone,
    windowed_xp,
)
from questline.leagues import LeagueStore
from questline.models import Tenant
from questline.repository import TenantRepository

log = logging.getLogger("questline.api")
bp = Blueprint("leagues", __name__, url_prefix="/api/v1")

ANONYMOUS = "Anonymous learner"


def store() -> LeagueStore:
    return LeagueStore(ctx().redis, ctx().settings.redis_prefix)


def _now() -> datetime:
    return datetime.now(UTC)


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in {"1", "true", "yes", "on"}


def _scope() -> str:
    scope = request.args.get("league", "tenant")
    if not _valid_scope(scope):
        raise BadRequest("league must be 'tenant' or 'course:<course id>'")
    return scope


def _player(repo: TenantRepository, name: str = "player", required: bool = True) -> int | None:
    pid = _int_arg(name, None, 1, 2**63 - 1)
    if pid is None:
        if required:
            raise BadRequest(f"give ?{name}=<player id>")
        return None
    if repo.player(pid) is None:
        raise NotFound(f"no player {pid} in this tenant")
    return pid


def _league(session: Session, tenant_id: int, scope: str) -> League:
    league = league_by_scope(session, tenant_id, scope)
    if league is None or not league.enabled:
        raise NotFound(f"leagues are not turned on for {scope!r}")
    return league


def _hidden(session: Session, tenant_id: int, player_ids: list[int]) -> set[int]:
    if not player_ids:
        return set()
    return set(
        session.scalars(
            select(BoardPreference.player_id).where(
                BoardPreference.tenant_id == tenant_id,
                BoardPreference.player_id.in_(player_ids),
                BoardPreference.opt_out.is_(True),
            )
        )
    )


def _who(
    pid: int, viewer: int | None, names: dict[int, str], hidden: set[int], anonymise: bool
) -> dict[str, Any]:
    """A row's identity as others may see it: opted-out players and, with ``anonymise``,
    everyone but the viewer appear without id or name."""
    if pid != viewer and (anonymise or pid in hidden):
        return {"player_id": None, "display_name": ANONYMOUS, "me": False}
    return {"player_id": pid, "display_name": names.get(pid, ""), "me": pid == viewer}


def config_json(league: League) -> dict[str, Any]:
    return {
        "league": league.scope,
        "enabled": league.enabled,
        "tiers": league.tiers,
        "cohort_size": league.cohort_size,
        "promote": league.promote,
        "demote": league.demote,
    }


@bp.get("/leagues/config")
def get_configs() -> Any:
    tenant_id = authenticate()
    with ctx().db.sessions() as session:
        leagues = session.scalars(
            select(League).where(League.tenant_id == tenant_id).order_by(League.id)
        ).all()
        return jsonify({"leagues": [config_json(lg) for lg in leagues]})


@bp.put("/leagues/config")
def put_config() -> Any:
    """Create or change a league; changes to tiers and sizes apply from the next joins."""
    tenant_id = authenticate()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object")
    with ctx().db.session() as session:
        saved = config_json(save_config(session, tenant_id, body))
    forget_league_info(tenant_id)
    return jsonify(saved)


def save_config(session: Session, tenant_id: int, body: dict[str, Any]) -> League:
    """Create or change the league ``body["league"]`` names (API and CLI); 422 on bad values."""
    scope = body.get("league", "tenant")
    if not isinstance(scope, str) or not _valid_scope(scope):
        raise Unprocessable("league must be 'tenant' or 'course:<course id>'")
    current = league_by_scope(session, tenant_id, scope)
    config = _merged_config(league_config(current) if current else LeagueConfig(), body)
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise Unprocessable("enabled must be true or false")
    if current is None:
        current = League(tenant_id=tenant_id, scope=scope)
        session.add(current)
    current.enabled = enabled
    current.tiers = list(config.tiers)
    current.cohort_size = config.cohort_size
    current.promote = list(config.promote)
    current.demote = list(config.demote)
    session.flush()
    return current


def _merged_config(base: LeagueConfig, body: dict[str, Any]) -> LeagueConfig:
    """The config the body asks for, unspecified fields kept from ``base``; new tiers without
    new counts take the default counts."""
    fresh = "tiers" in body
    try:
        return LeagueConfig.build(
            body.get("tiers", base.tiers),
            body.get("cohort_size", base.cohort_size),
            body.get("promote", DEFAULT_PROMOTE if fresh else list(base.promote)),
            body.get("demote", DEFAULT_DEMOTE if fresh else list(base.demote)),
        )
    except (LeagueConfigError, TypeError, ValueError) as exc:
        raise Unprocessable(f"invalid league configuration: {exc}") from None


def _valid_scope(scope: str) -> bool:
    """Leagues are per tenant or per course; groups have boards, not leagues."""
    try:
        validate_board(scope)
    except UnknownBoard:
        return False
    return not scope.startswith(GROUP_PREFIX)


# The two reads of a standings request, as plain SQL built once: constructing the ORM select
# with two aliases cost more Python time per request than the database took to answer it.
# ``them`` is not filtered by tenant again: a cohort belongs to one league of one tenant (``me``
# is), and the extra condition led generic plans to scan the tenant index (34 ms, not 0.1 ms).
_LEAGUE_AND_ZONE = (
    select(League, Tenant.timezone)
    .join(Tenant, Tenant.id == League.tenant_id)
    .where(League.tenant_id == bindparam("tenant"), League.scope == bindparam("scope"))
)
_COHORT_OF_VIEWER = text(
    """
    SELECT me.cohort_id, me.tier, them.player_id, p.display_name, bp.opt_out
    FROM league_memberships AS me
    JOIN league_memberships AS them ON them.cohort_id = me.cohort_id
    JOIN players AS p ON p.id = them.player_id
    LEFT JOIN board_preferences AS bp
      ON bp.tenant_id = them.tenant_id AND bp.player_id = them.player_id
    WHERE me.tenant_id = :tenant AND me.league_id = :league AND me.week = :week
      AND me.player_id = :viewer
    """
)


@bp.get("/leagues/standings")
def league_standings() -> Any:
    """The viewer's cohort this week: every member's place, XP and zone, and the time left."""
    tenant_id = authenticate()
    scope, anonymise = _scope(), _flag("anonymise")
    viewer = _int_arg("player", None, 1, 2**63 - 1)
    if viewer is None:
        raise BadRequest("give ?player=<player id>")
    with ctx().db.sessions() as session:
        return jsonify(
            cohort_standings(session, store(), tenant_id, scope, viewer, _now(), anonymise)
        )


@dataclass(frozen=True)
class _LeagueInfo:
    """What a standings read needs of a league and its tenant, cached in the process."""

    league_id: int
    tenant_id: int
    scope: str
    enabled: bool
    config: LeagueConfig
    zone: str


_INFO_SECONDS = 30.0  # a configuration change reaches every web worker within this
_info_cache: dict[tuple[int, str], tuple[float, _LeagueInfo | None]] = {}
_info_lock = threading.Lock()


def _league_info(session: Session, tenant_id: int, scope: str) -> _LeagueInfo | None:
    """The league and zone for a standings read: one SQL statement every ``_INFO_SECONDS`` per
    (tenant, scope) and process, not one per read."""
    now = time.monotonic()
    with _info_lock:
        hit = _info_cache.get((tenant_id, scope))
    if hit is not None and hit[0] > now:
        return hit[1]
    found = session.execute(_LEAGUE_AND_ZONE, {"tenant": tenant_id, "scope": scope}).first()
    info = None
    if found is not None:
        league = found[0]
        info = _LeagueInfo(
            league.id,
            league.tenant_id,
            league.scope,
            bool(league.enabled),
            league_config(league),
            found[1] or "UTC",
        )
    with _info_lock:
        _info_cache[(tenant_id, scope)] = (now + _INFO_SECONDS, info)
    return info


def forget_league_info(tenant_id: int) -> None:
    """Drop this process's cached league info of a tenant (its configuration changed)."""
    with _info_lock:
        for key in [k for k in _info_cache if k[0] == tenant_id]:
            del _info_cache[key]


def _ids(meta: dict[str, Any]) -> set[int]:
    return {int(m[0]) for m in meta["members"]}


def cohort_standings(
    session: Session,
    live_store: LeagueStore,
    tenant_id: int,
    scope: str,
    viewer: int,
    now: datetime,
    anonymise: bool = False,
) -> dict[str, Any]:
    """The standings document of the API and of ``questline leagues standings``.

    The widget reads this on every page, so the usual read is one Redis round trip and no SQL:
    the league and zone come from a per-process cache, and a Lua script returns the viewer's
    seat, the cohort's cached metadata (tier, members, names, opt-outs) and its sorted set.
    PostgreSQL is asked (the viewer's seat joined to every member's name and preference) only
    when Redis has not cached the seat or metadata yet, or when the set holds a player the
    metadata lacks (someone joined since): that read fills the cache. If Redis cannot answer,
    the XP is summed from the ledger and the answer says ``degraded``.
    """
    info = _league_info(session, tenant_id, scope)
    if info is None or not info.enabled:
        raise NotFound(f"leagues are not turned on for {scope!r}")
    config = info.config
    week = week_window(now, info.zone)
    head = {
        "league": info.scope,
        "week": week.key,
        "ends_at": week.end.isoformat(),
        "time_left_seconds": int(time_left(now, week).total_seconds()),
    }
    source, view = "redis", None
    try:
        view = live_store.read_cohort(tenant_id, info.league_id, week.key, viewer)
    except Exception:  # reads degrade (STYLE 8)
        log.warning("standings from database: redis unavailable", exc_info=True)
        source = "database"
    meta = view.meta if view is not None else None
    # A set member missing from the cached metadata joined after it was cached: ask again.
    if view is not None and meta is not None and view.scores.keys() <= _ids(meta):
        cohort_id, tier = view.cohort_id, int(meta["tier"])
        members = [int(m[0]) for m in meta["members"]]
        names = {int(m[0]): m[1] for m in meta["members"]}
        hidden = {int(m[0]) for m in meta["members"] if m[2]}
        live = view.scores
    else:
        rows = session.execute(
            _COHORT_OF_VIEWER,
            {"tenant": tenant_id, "league": info.league_id, "week": week.key, "viewer": viewer},
        ).all()
        if not rows:
            if TenantRepository(session, tenant_id).player(viewer) is None:
                raise NotFound(f"no player {viewer} in this tenant")
            return {**head, "joined": False, "message": "earn XP this week to join a cohort"}
        cohort_id, tier = int(rows[0][0]), int(rows[0][1])
        members = [int(r[2]) for r in rows]
        names = {int(r[2]): r[3] for r in rows}
        hidden = {int(r[2]) for r in rows if r[4]}
        live = {}
        if source == "redis":
            try:
                meta = {"tier": tier, "members": [[p, names[p], p in hidden] for p in members]}
                live_store.remember_cohort(
                    tenant_id, info.league_id, week.key, dict.fromkeys(members, cohort_id),
                    cohort_id, meta,
                )  # fmt: skip
                live = (
                    view.scores
                    if view is not None
                    else live_store.cohort_scores(tenant_id, cohort_id)
                )
            except Exception:  # reads degrade (STYLE 8)
                log.warning("standings from database: redis unavailable", exc_info=True)
                source = "database"
        if source == "database":
            league = League(id=info.league_id, tenant_id=tenant_id, scope=info.scope)
            live = league_xp(session, league, week, members)
    table = standings({pid: max(live.get(pid, 0), 0) for pid in members}, tier, config)
    mine = next(s for s in table if s.player_id == viewer)
    return {
        **head,
        "joined": True,
        "source": source,
        "degraded": source != "redis",
        "tier": config.tier_name(tier),
        "tier_index": tier,
        "cohort_id": cohort_id,
        "promote": config.promote_count(tier),
        "demote": config.demote_count(tier),
        "me": {"rank": mine.rank, "xp": mine.xp, "zone": mine.zone},
        "entries": [
            {"rank": s.rank, "xp": s.xp, "zone": s.zone}
            | _who(s.player_id, viewer, names, hidden, anonymise)
            for s in table
        ],
    }


@bp.get("/leagues/history")
def league_history() -> Any:
    tenant_id = authenticate()
    scope = _scope()
    limit = cast(int, _int_arg("limit", 20, 1, 200))
    with ctx().db.sessions() as session:
        viewer = cast(int, _player(TenantRepository(session, tenant_id)))
        league = _league(session, tenant_id, scope)
        return jsonify(player_history(session, league, viewer, limit))


def player_history(session: Session, league: League, player_id: int, limit: int) -> dict[str, Any]:
    """A player's finished weeks in one league, newest first (API and CLI)."""
    config = league_config(league)
    rows = session.scalars(
        select(LeagueResult)
        .where(
            LeagueResult.tenant_id == league.tenant_id,
            LeagueResult.league_id == league.id,
            LeagueResult.player_id == player_id,
        )
        .order_by(LeagueResult.week.desc())
        .limit(limit)
    ).all()
    return {
        "league": league.scope,
        "player_id": player_id,
        "weeks": [
            {
                "week": r.week,
                "tier": config.tier_name(r.tier),
                "rank": r.rank,
                "cohort_members": r.cohort_members,
                "xp": r.xp,
                "zone": r.zone,
                "outcome": r.outcome,
                "next_tier": config.tier_name(r.next_tier),
            }
            for r in rows
        ],
    }


@bp.get("/boards/<kind>/<path:board>")
def windowed_board(kind: str, board: str) -> Any:
    """A board over the current day, week or month (tenant zone), or all time."""
    tenant_id = authenticate()
    if kind not in {"day", "week", "month", "all"}:
        raise NotFound("boards are /boards/<day|week|month|all>/<tenant|course:<id>|group:<id>>")
    try:
        validate_board(board)
    except UnknownBoard:
        raise NotFound(
            f"no board {board!r}: boards are 'tenant', 'course:<course id>' and 'group:<group id>'"
        ) from None
    limit = cast(int, _int_arg("limit", 10, 1, 100))
    anonymise = _flag("anonymise")
    source = "redis"
    with ctx().db.sessions() as session:
        repo = TenantRepository(session, tenant_id)
        around = _player(repo, "around", required=False)
        viewer = _player(repo, "player", required=False) or around
        period = None
        try:
            if kind == "all":
                entries, total, my_rank = ctx().boards.page(
                    tenant_id, board, limit=limit, around=around
                )
            else:
                win = window(cast(WindowKind, kind), _now(), tenant_zone(session, tenant_id))
                period = win.key
                entries, total, my_rank = store().window_page(
                    tenant_id, win.kind, win.key, board, limit=limit, around=around
                )
        except Exception:
            log.warning("windowed board from database: redis unavailable", exc_info=True)
            source = "database"
            entries, total, my_rank, period = _board_from_ledger(
                session, repo, tenant_id, kind, board, limit, around
            )
        ids = [pid for _, pid, _ in entries]
        names, hidden = repo.names(ids), _hidden(session, tenant_id, ids)
    return jsonify(
        {
            "board": board,
            "window": kind,
            "period": period,
            "total": total,
            "source": source,
            "degraded": source != "redis",
            "around": around,
            "around_rank": my_rank,
            "entries": [
                {"rank": rank, "xp": xp} | _who(pid, viewer, names, hidden, anonymise)
                for rank, pid, xp in entries
            ],
        }
    )


def _board_from_ledger(
    session: Session,
    repo: TenantRepository,
    tenant_id: int,
    kind: str,
    board: str,
    limit: int,
    around: int | None,
) -> tuple[list[tuple[int, int, int]], int, int | None, str | None]:
    if kind == "all":
        return (*repo.board_from_database(board, limit=limit, around=around), None)
    win = window(cast(WindowKind, kind), _now(), tenant_zone(session, tenant_id))
    scores = windowed_xp(session, tenant_id, None, {win.kind: win})[win.kind].get(board, {})
    # The order Redis gives: score descending, equal scores by member text descending.
    rows = sorted(scores.items(), key=lambda kv: (kv[1], str(kv[0])), reverse=True)
    total = len(rows)
    mine = next((i for i, (pid, _) in enumerate(rows) if pid == around), None)
    start = 0 if mine is None else max(0, min(mine - limit // 2, max(total - limit, 0)))
    page = [(start + i + 1, pid, xp) for i, (pid, xp) in enumerate(rows[start : start + limit])]
    return page, total, (mine + 1 if mine is not None else None), win.key


@bp.put("/players/<int:player_id>/board-preference")
def put_board_preference(player_id: int) -> Any:
    tenant_id = authenticate()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("opt_out"), bool):
        raise Unprocessable('send {"opt_out": true} or {"opt_out": false}')
    with ctx().db.session() as session:
        if TenantRepository(session, tenant_id).player(player_id) is None:
            raise NotFound(f"no player {player_id} in this tenant")
        pref = session.get(BoardPreference, (tenant_id, player_id))
        if pref is None:
            pref = BoardPreference(tenant_id=tenant_id, player_id=player_id)
            session.add(pref)
        pref.opt_out = body["opt_out"]
        pref.updated_at = _now()
        cohorts = session.scalars(
            select(LeagueMembership.cohort_id).where(
                LeagueMembership.tenant_id == tenant_id,
                LeagueMembership.player_id == player_id,
                LeagueMembership.week >= (_now() - timedelta(days=8)).date().isoformat(),
            )
        ).all()
    try:  # cached cohort names must not show an opted-out player
        pipe = store().client.pipeline(transaction=False)
        store().forget_cohorts(pipe, tenant_id, [int(c) for c in cohorts])
        pipe.execute()
    except Exception:
        log.warning("cohort cache not dropped: redis unavailable", exc_info=True)
    return jsonify({"player_id": player_id, "opt_out": body["opt_out"]})
