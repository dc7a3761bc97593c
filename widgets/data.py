"""What each widget shows, read from PostgreSQL (the truth) and Redis (the boards).

Each loader returns plain data for one widget; ``widgets.render`` turns it into HTML. Board reads
are pipelined (one Redis round trip for the board size, the viewer's rank and the top N; a second
only when the viewer sits below the top N) and degrade to PostgreSQL when Redis cannot answer
(STYLE 8): the widget then says it shows stored totals.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.badges import Group, Leaf, measure
from engine.counters import RuleCounters
from engine.leagues import window
from engine.rules import DEFAULT_RULES, RuleBook, RuleSet, parse_rules
from questline.awards import activity, player_badges
from questline.inventory import inventory
from questline.leaderboards import Leaderboards
from questline.league_models import BoardPreference
from questline.league_repo import windowed_xp
from questline.leagues import LeagueStore
from questline.models import Player, Tenant, XpLedger
from questline.models import RuleSet as RuleSetRow
from questline.repository import TenantRepository
from widgets.models import WidgetPreference

log = logging.getLogger("questline.widgets")

Window = Literal["all", "week", "month"]
FREEZE_ITEM = "streak_freeze"


@dataclass(frozen=True)
class BoardRow:
    rank: int
    xp: int
    name: str | None  # None: shown as an anonymous learner
    me: bool


@dataclass(frozen=True)
class BoardView:
    board: str
    window: Window
    period: str | None
    total: int
    my_rank: int | None
    top: list[BoardRow]
    around: list[BoardRow]  # the viewer and neighbours, when below the top N
    degraded: bool
    opted_out: bool


# Statements a widget runs on every request, built once: building a select and its cache key
# costs more CPU than PostgreSQL spends answering these.
_VIEWER = (
    select(Player, Tenant.timezone, WidgetPreference.nudges_off)
    .join(Tenant, Tenant.id == Player.tenant_id)
    .outerjoin(
        WidgetPreference,
        (WidgetPreference.tenant_id == Player.tenant_id)
        & (WidgetPreference.player_id == Player.id),
    )
    .where(Player.tenant_id == bindparam("tenant"), Player.id == bindparam("player"))
)
_ACTIVE_RULE_IDS = (
    select(RuleSetRow.id)
    .where(RuleSetRow.tenant_id == bindparam("tenant"), RuleSetRow.active.is_(True))
    .order_by(RuleSetRow.id)
)
_NAMES = (
    select(Player.id, Player.display_name, BoardPreference.opt_out)
    .outerjoin(
        BoardPreference,
        (BoardPreference.tenant_id == Player.tenant_id) & (BoardPreference.player_id == Player.id),
    )
    .where(Player.tenant_id == bindparam("tenant"), Player.id.in_(bindparam("ids", expanding=True)))
)
_RECENT_GAINS = (
    select(XpLedger.amount, XpLedger.explanation, XpLedger.occurred_at)
    .where(XpLedger.tenant_id == bindparam("tenant"), XpLedger.player_id == bindparam("player"))
    .order_by(XpLedger.occurred_at.desc(), XpLedger.id.desc())
    .limit(bindparam("limit"))
)


def _zone(session: Session, tenant_id: int, player: Player | None) -> str:
    if player is not None and player.timezone:
        return player.timezone
    known = session.info.get(("tenant_zone", tenant_id))  # set by ``viewer``
    if known is not None:
        return str(known)
    return session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"


def viewer(session: Session, tenant_id: int, player_id: int) -> Player | None:
    """The viewing player, with the tenant's time zone and their nudge switch, in one query.

    The zone and the switch are kept in ``session.info`` (this request's session only), where
    ``_zone`` and ``widgets.nudges.nudges_off`` find them instead of asking again."""
    row = session.execute(_VIEWER, {"tenant": tenant_id, "player": player_id}).first()
    if row is None:
        return None
    player, zone, off = row
    session.info[("tenant_zone", tenant_id)] = zone or "UTC"
    session.info[("nudges_off", tenant_id, player_id)] = bool(off)
    return player  # type: ignore[no-any-return]


_DEFAULT_RULES = parse_rules(DEFAULT_RULES)
_BOOKS: dict[tuple[str, int, tuple[int, ...]], RuleBook] = {}
_BOOKS_LOCK = threading.Lock()
_BOOKS_LIMIT = 256


def rule_book(session: Session, tenant_id: int) -> RuleBook:
    """The tenant's active rules, parsed once per set of active versions in this process.

    Stored rule sets are never edited (a change is a new row), so the ids of the active rows
    name the rules exactly: a widget asks only for those ids (no documents to transfer, decode
    and re-key, which ``workers.rulesets.active_rule_book`` does on every call) and parses the
    documents only when that set of ids is new. An activation shows on the next request."""
    ids = tuple(session.scalars(_ACTIVE_RULE_IDS, {"tenant": tenant_id}))
    key = (str(session.get_bind().engine.url), tenant_id, ids)
    with _BOOKS_LOCK:
        book = _BOOKS.get(key)
    if book is not None:
        return book
    tenant = _DEFAULT_RULES
    courses: dict[str, RuleSet] = {}
    if ids:
        rows = session.execute(
            select(RuleSetRow.course, RuleSetRow.document)
            .where(RuleSetRow.id.in_(ids))
            .order_by(RuleSetRow.version)
        )
        for course, document in rows:
            if course is None:
                tenant = parse_rules(document, scope="tenant")
            else:
                courses[course] = parse_rules(document, scope="course")
    book = RuleBook(tenant, courses)
    with _BOOKS_LOCK:
        if len(_BOOKS) >= _BOOKS_LIMIT:
            _BOOKS.clear()
        _BOOKS[key] = book
    return book


def active_rules(session: Session, tenant_id: int) -> RuleSet:
    """The tenant-wide active rule set (the defaults when the tenant has none), cached."""
    return rule_book(session, tenant_id).tenant


def _redis_board(
    client: Any, key: str, player_id: int | None, limit: int, neighbours: int
) -> tuple[int, int | None, list[tuple[int, int]], list[tuple[int, int, int]]]:
    """(size, 0-based rank, top rows, rows around the viewer) in one or two round trips."""
    pipe = client.pipeline(transaction=False)
    pipe.zcard(key)
    pipe.zrevrank(key, str(player_id) if player_id is not None else "-")
    pipe.zrevrange(key, 0, limit - 1, withscores=True)
    total, rank, top = pipe.execute()
    around: list[tuple[int, int, int]] = []
    if rank is not None and rank >= limit:
        start = max(limit, rank - neighbours)
        rows = client.zrevrange(key, start, rank + neighbours, withscores=True)
        around = [(start + i + 1, int(m), int(s)) for i, (m, s) in enumerate(rows)]
    return (
        int(total),
        None if rank is None else int(rank),
        [(int(m), int(s)) for m, s in top],
        around,
    )


def _db_board(
    session: Session,
    repo: TenantRepository,
    board: str,
    win: Window,
    zone: str,
    now: datetime,
    player_id: int | None,
    limit: int,
    neighbours: int,
) -> tuple[int, int | None, list[tuple[int, int]], list[tuple[int, int, int]]]:
    """The same answer as ``_redis_board``, computed from PostgreSQL."""
    if win == "all":
        top_rows, total, _ = repo.board_from_database(board, limit=limit, around=None)
        mine: list[tuple[int, int, int]] = []
        if player_id is not None:
            mine, total, my_rank = repo.board_from_database(
                board, limit=2 * neighbours + 1, around=player_id
            )
        else:
            my_rank = None
        rank = None if my_rank is None else my_rank - 1
        around = [r for r in mine if r[0] > limit] if rank is not None and rank >= limit else []
        return total, rank, [(pid, xp) for _, pid, xp in top_rows], around
    span = window(win, now, zone)
    scores = windowed_xp(session, repo.tenant_id, None, {win: span})[win].get(board, {})
    ordered = sorted(scores.items(), key=lambda kv: (kv[1], str(kv[0])), reverse=True)
    index = next((i for i, (pid, _) in enumerate(ordered) if pid == player_id), None)
    around = []
    if index is not None and index >= limit:
        start = max(limit, index - neighbours)
        around = [
            (start + i + 1, pid, xp)
            for i, (pid, xp) in enumerate(ordered[start : index + neighbours + 1])
        ]
    return len(ordered), index, ordered[:limit], around


def leaderboard(
    session: Session,
    boards: Leaderboards,
    tenant_id: int,
    player_id: int | None,
    *,
    board: str = "tenant",
    win: Window = "all",
    limit: int = 10,
    neighbours: int = 2,
    anonymise: bool = False,
    now: datetime,
) -> BoardView:
    """Top ``limit`` plus the viewer's rank and ``neighbours`` either side.

    Players who opted out appear to others as anonymous learners (their rank stays, so everyone's
    places add up); with ``anonymise`` every row but the viewer's is anonymous.
    """
    repo = TenantRepository(session, tenant_id)
    # Only windowed boards need the tenant's zone (a week starts at local midnight Monday).
    zone = _zone(session, tenant_id, None) if win != "all" else "UTC"
    if win == "all":
        period = None
        key = boards.key(tenant_id, board)
    else:
        period = window(win, now, zone).key
        key = LeagueStore(boards.client, boards.prefix).window_key(tenant_id, win, period, board)
    degraded = False
    try:
        total, rank, top, around = _redis_board(boards.client, key, player_id, limit, neighbours)
    except Exception:
        log.warning("widget board from database: redis unavailable", exc_info=True)
        degraded = True
        total, rank, top, around = _db_board(
            session, repo, board, win, zone, now, player_id, limit, neighbours
        )
    ids = [pid for pid, _ in top] + [pid for _, pid, _ in around]
    names, hidden = _names_and_hidden(
        session, tenant_id, ids + ([player_id] if player_id is not None else [])
    )

    def row(rank_: int, pid: int, xp: int) -> BoardRow:
        me = pid == player_id
        shown = me or not (anonymise or pid in hidden)
        return BoardRow(rank_, xp, names.get(pid, "") if shown else None, me)

    return BoardView(
        board=board,
        window=win,
        period=period,
        total=total,
        my_rank=None if rank is None else rank + 1,
        top=[row(i + 1, pid, xp) for i, (pid, xp) in enumerate(top)],
        around=[row(r, pid, xp) for r, pid, xp in around],
        degraded=degraded,
        opted_out=player_id in hidden,
    )


def _names_and_hidden(
    session: Session, tenant_id: int, ids: list[int]
) -> tuple[dict[int, str], set[int]]:
    """Display names and the opted-out among ``ids``, in one round trip (a widget's budget is
    a few milliseconds; each query is one)."""
    if not ids:
        return {}, set()
    rows = session.execute(_NAMES, {"tenant": tenant_id, "ids": sorted(set(ids))})
    names: dict[int, str] = {}
    hidden: set[int] = set()
    for pid, name, out in rows:
        names[pid] = name
        if out:
            hidden.add(pid)
    return names, hidden


def opted_out(session: Session, tenant_id: int, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    return set(
        session.scalars(
            select(BoardPreference.player_id).where(
                BoardPreference.tenant_id == tenant_id,
                BoardPreference.player_id.in_(ids),
                BoardPreference.opt_out.is_(True),
            )
        )
    )


def set_opt_out(session: Session, tenant_id: int, player_id: int, opt_out: bool) -> None:
    """Record the player's choice to stay off the boards others see (the leagues' table)."""
    pref = session.get(BoardPreference, (tenant_id, player_id))
    if pref is None:
        pref = BoardPreference(tenant_id=tenant_id, player_id=player_id)
        session.add(pref)
    pref.opt_out = opt_out
    pref.updated_at = datetime.now(UTC)


@dataclass(frozen=True)
class LevelView:
    level: int
    xp: int
    floor: int
    next_xp: int | None
    percent: int
    recent: list[dict[str, Any]]


def level(session: Session, tenant_id: int, player: Player, *, recent: int = 5) -> LevelView:
    curve = active_rules(session, tenant_id).levels
    floor = curve.xp_for(player.level) or 0
    ceiling = curve.xp_for(player.level + 1)
    span = (ceiling - floor) if ceiling is not None else 0
    percent = 100 if not span else max(0, min(100, round(100 * (player.xp - floor) / span)))
    rows = session.execute(
        _RECENT_GAINS, {"tenant": tenant_id, "player": player.id, "limit": recent}
    )
    return LevelView(
        level=player.level,
        xp=player.xp,
        floor=floor,
        next_xp=ceiling,
        percent=percent,
        recent=[{"amount": a, "explanation": e, "at": at} for a, e, at in rows],
    )


@dataclass(frozen=True)
class StreakView:
    current: int
    longest: int
    today_counts: bool
    hours_left: int
    freezes: int
    zone: str


def streak(
    session: Session, tenant_id: int, player: Player, *, now: datetime, freezes: bool = True
) -> StreakView:
    """Current and longest streak, whether today (the learner's local day) counts yet, and the
    hours left before local midnight; a streak whose last day is before yesterday is broken.
    ``freezes=False`` skips reading the inventory (0 shown) for callers that do not show it."""
    zone = _zone(session, tenant_id, player)
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    last = date.fromisoformat(player.last_active_day) if player.last_active_day else None
    current = player.streak_current if last is not None and last >= today - timedelta(1) else 0
    midnight = datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz)
    hours_left = max(0, int((midnight - now).total_seconds() // 3600))
    owned = inventory(session, tenant_id, player.id).get(FREEZE_ITEM, 0) if freezes else 0
    return StreakView(current, player.streak_longest, last == today, hours_left, owned, zone)


@dataclass(frozen=True)
class LockedBadge:
    badge_id: str
    name: str
    tier_name: str
    description: str
    # (kind, event types or "", have, need) per criterion of the next tier
    progress: list[tuple[str, str, int, int]] = field(default_factory=list)


def badge_shelf(
    session: Session, tenant_id: int, player: Player, *, now: datetime
) -> tuple[list[dict[str, Any]], list[LockedBadge]]:
    """Earned badges (with date and the explanation of how) and the next locked tier of every
    tenant-wide badge with the player's progress toward each of its criteria."""
    earned = player_badges(session, tenant_id, player.id, now=now)
    held: dict[str, int] = {}
    for b in earned:
        if b["course"] is None:
            held[b["badge_id"]] = max(held.get(b["badge_id"], -1), b["tier"])
    tallies = RuleCounters.from_json(player.rule_state).tallies
    at = int(now.timestamp())
    locked: list[LockedBadge] = []
    for badge in active_rules(session, tenant_id).badges:
        if badge.scope != "tenant":
            continue
        index = held.get(badge.id, -1) + 1
        if index >= len(badge.tiers):
            continue
        tier = badge.tiers[index]
        leaves: list[Leaf] = []
        _leaves(tier.criteria, leaves)
        progress = []
        for leaf in leaves:
            if leaf.kind == "streak":
                have = float(player.streak_current)
            elif leaf.kind == "level":
                have = float(player.level)
            elif leaf.kind == "xp":
                have = float(player.xp)
            else:
                have = measure(tallies.get(f"{leaf.key}|*"), leaf, at)
            need = int(leaf.threshold)
            types = ", ".join(sorted(leaf.of.types)) if leaf.of.types else ""
            progress.append((leaf.kind, types, min(int(have), need), need))
        locked.append(
            LockedBadge(
                badge.id,
                badge.name,
                tier.name if len(badge.tiers) > 1 else "",
                badge.description,
                progress,
            )
        )
    return earned, locked


def _leaves(node: Leaf | Group, out: list[Leaf]) -> None:
    if isinstance(node, Leaf):
        out.append(node)
    else:
        for part in node.parts:
            _leaves(part, out)


def feed(session: Session, tenant_id: int, player: Player, *, limit: int = 10) -> list[Any]:
    return activity(session, tenant_id, player.id, limit=limit)
