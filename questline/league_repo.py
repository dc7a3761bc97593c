"""League storage in PostgreSQL: configs, ledger sums per window, and joining cohorts.

Every query here filters by tenant (ARCHITECTURE invariant 7). League XP is read from the XP
ledger by ``created_at``, the moment an award was applied, never by when the activity happened:
a late or replayed event then lands in the week that is open when it is applied, and a closed
week's table can never change after its results were written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, select, text, update
from sqlalchemy.orm import Session

from engine.leagues import (
    LeagueConfig,
    OpenCohort,
    Window,
    WindowKind,
    place,
    previous_week,
)
from questline.league_models import (
    League,
    LeagueCohort,
    LeagueMembership,
    LeaguePlayer,
    LeagueWeek,
)
from questline.models import Tenant, XpLedger

COURSE_PREFIX = "course:"


def league_config(league: League) -> LeagueConfig:
    return LeagueConfig.build(league.tiers, league.cohort_size, league.promote, league.demote)


def tenant_zone(session: Session, tenant_id: int) -> str:
    return session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"


def enabled_leagues(session: Session, tenant_id: int) -> list[League]:
    return list(
        session.scalars(
            select(League)
            .where(League.tenant_id == tenant_id, League.enabled.is_(True))
            .order_by(League.id)
        )
    )


def league_by_scope(session: Session, tenant_id: int, scope: str) -> League | None:
    return session.scalar(
        select(League).where(League.tenant_id == tenant_id, League.scope == scope)
    )


def scope_course(scope: str) -> str | None:
    """The course a league scope counts XP from, or None for the whole tenant."""
    return scope[len(COURSE_PREFIX) :] if scope.startswith(COURSE_PREFIX) else None


def windowed_xp(
    session: Session,
    tenant_id: int,
    player_ids: Iterable[int] | None,
    windows: Mapping[WindowKind, Window],
) -> dict[WindowKind, dict[str, dict[int, int]]]:
    """XP per window, board (``tenant``, ``course:<id>``) and player, summed from the ledger.

    One query for all windows: rows since the earliest window start, each summed into the
    windows whose [start, end) holds its ``created_at``. Only positive totals are returned.
    """
    earliest = min(w.start for w in windows.values())
    columns = [
        func.sum(
            case(
                (
                    and_(XpLedger.created_at >= w.start, XpLedger.created_at < w.end),
                    XpLedger.amount,
                ),
                else_=0,
            )
        )
        for w in windows.values()
    ]
    query = (
        select(XpLedger.player_id, XpLedger.course, *columns)
        .where(XpLedger.tenant_id == tenant_id, XpLedger.created_at >= earliest)
        .group_by(XpLedger.player_id, XpLedger.course)
    )
    if player_ids is not None:
        query = query.where(XpLedger.player_id.in_(list(player_ids)))
    kinds = list(windows)
    out: dict[WindowKind, dict[str, dict[int, int]]] = {k: defaultdict(dict) for k in kinds}
    for pid, course, *sums in session.execute(query):
        for kind, xp in zip(kinds, sums, strict=True):
            xp = int(xp or 0)
            if not xp:
                continue
            boards = out[kind]
            boards["tenant"][pid] = boards["tenant"].get(pid, 0) + xp
            if course is not None:
                boards[COURSE_PREFIX + course][pid] = xp
    return {
        k: {b: {p: x for p, x in s.items() if x > 0} for b, s in v.items()} for k, v in out.items()
    }


REWARD_KEY_PREFIX = "league|"  # ledger keys of XP paid for league.finished (league_rewards)


def league_xp_filter(league: League, week: Window) -> list[Any]:
    """The ledger rows that count as league XP in ``week``: this tenant, applied inside the
    week, in the league's course if it has one, and not a league reward (a reward paid after a
    week closed is not activity in the next one)."""
    clauses: list[Any] = [
        XpLedger.tenant_id == league.tenant_id,
        XpLedger.created_at >= week.start,
        XpLedger.created_at < week.end,
        ~XpLedger.idempotency_key.startswith(REWARD_KEY_PREFIX, autoescape=True),
    ]
    course = scope_course(league.scope)
    if course is not None:
        clauses.append(XpLedger.course == course)
    return clauses


def league_xp(
    session: Session,
    league: League,
    week: Window,
    player_ids: Iterable[int] | None = None,
) -> dict[int, int]:
    """Each player's XP in this league's scope during ``week`` (players with no rows omitted)."""
    query = (
        select(XpLedger.player_id, func.sum(XpLedger.amount))
        .where(*league_xp_filter(league, week))
        .group_by(XpLedger.player_id)
    )
    if player_ids is not None:
        query = query.where(XpLedger.player_id.in_(list(player_ids)))
    return {int(pid): int(xp or 0) for pid, xp in session.execute(query)}


def unseated(session: Session, league: League, week: Window) -> list[int]:
    """Players with positive league XP in ``week`` but no cohort (the step missed them), found
    by the database, so the close never ships a million ids back and forth to look."""
    seated = select(LeagueMembership.player_id).where(
        LeagueMembership.league_id == league.id,
        LeagueMembership.week == week.key,
        LeagueMembership.player_id == XpLedger.player_id,
    )
    query = (
        select(XpLedger.player_id)
        .where(*league_xp_filter(league, week), ~seated.exists())
        .group_by(XpLedger.player_id)
        .having(func.sum(XpLedger.amount) > 0)
    )
    return [int(p) for p in session.scalars(query)]


def ensure_week(session: Session, league: League, week: Window, postgres: bool) -> None:
    """The week's progress row, created once (a concurrent insert is ignored)."""
    values = {
        "tenant_id": league.tenant_id,
        "league_id": league.id,
        "week": week.key,
        "starts_at": week.start,
        "ends_at": week.end,
        "status": "open",
    }
    session.execute(insert_ignore(LeagueWeek, postgres, ["league_id", "week"]).values(**values))


def previous_week_open(session: Session, league: League, week: Window, zone: str) -> bool:
    """True while last week is still to be closed: joins wait so they start at the new tier."""
    before = previous_week(week, zone)
    status = session.scalar(
        select(LeagueWeek.status).where(
            LeagueWeek.league_id == league.id, LeagueWeek.week == before.key
        )
    )
    return status is not None and status != "closed"


def memberships(
    session: Session, league: League, week: str, player_ids: Iterable[int] | None = None
) -> dict[int, int]:
    """{player: cohort id} for the week (or only for ``player_ids``)."""
    query = select(LeagueMembership.player_id, LeagueMembership.cohort_id).where(
        LeagueMembership.tenant_id == league.tenant_id,
        LeagueMembership.league_id == league.id,
        LeagueMembership.week == week,
    )
    if player_ids is not None:
        query = query.where(LeagueMembership.player_id.in_(list(player_ids)))
    return {int(p): int(c) for p, c in session.execute(query)}


JOIN_CHUNK = 5000


def _lock_league(session: Session, league_id: int) -> None:
    """Serialise joins into one league across workers (held to the end of the transaction):
    open cohorts are read and filled by one transaction at a time. One lock per league, not per
    tier: every batch of a busy week touches every tier, so finer locks would only cost more
    round trips for the same order of work."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(:k1, :k2)"),
        {"k1": 1_000_000, "k2": league_id % 2_000_000_000},
    )


def join(
    session: Session,
    league: League,
    week: Window,
    player_ids: Iterable[int],
    postgres: bool,
) -> dict[int, int]:
    """Put players who have no cohort this week into open cohorts of their tier.

    Returns {player: cohort id} for those who joined now. On PostgreSQL the league is locked
    with a transaction-scoped advisory lock and the membership check is repeated under it, so
    two workers can neither overfill a cohort nor place a player twice (SQLite has one writer
    at a time anyway). A batch costs the same dozen statements whatever its size and however
    many tiers it spans: the placement is planned in Python (``engine.leagues.place``) and
    written with one statement per table.
    """
    wanted = set(player_ids)
    if len(wanted) > JOIN_CHUNK:
        # A reconcile or a late close may seat many at once: in slices, so no statement
        # carries more ids than PostgreSQL takes parameters (65,535).
        ordered, joined = sorted(wanted), {}
        for start in range(0, len(ordered), JOIN_CHUNK):
            part = ordered[start : start + JOIN_CHUNK]
            joined.update(join(session, league, week, part, postgres))
        return joined
    if not wanted:
        return {}
    wanted -= memberships(session, league, week.key, wanted).keys()
    if not wanted:
        return {}
    config = league_config(league)
    ensure_week(session, league, week, postgres)
    if postgres:
        # Array parameters: one statement, where executemany would send a statement a row.
        session.execute(
            text(
                "INSERT INTO league_players (league_id, player_id, tenant_id, tier)"
                " SELECT :league, p, :tenant, 0 FROM unnest(CAST(:ids AS bigint[])) AS p"
                " ON CONFLICT (league_id, player_id) DO NOTHING"
            ),
            {"league": league.id, "tenant": league.tenant_id, "ids": sorted(wanted)},
        )
    else:
        session.execute(
            insert_ignore(LeaguePlayer, postgres, ["league_id", "player_id"]),
            [
                {"league_id": league.id, "player_id": p, "tenant_id": league.tenant_id, "tier": 0}
                for p in sorted(wanted)
            ],
        )
    if postgres:
        _lock_league(session, league.id)
        wanted -= memberships(session, league, week.key, wanted).keys()
        if not wanted:
            return {}
    by_tier: dict[int, list[int]] = defaultdict(list)
    for pid, tier in session.execute(
        select(LeaguePlayer.player_id, LeaguePlayer.tier).where(
            LeaguePlayer.league_id == league.id, LeaguePlayer.player_id.in_(wanted)
        )
    ):
        by_tier[max(0, min(int(tier), len(config.tiers) - 1))].append(int(pid))
    return _fill(session, league, week.key, by_tier, config.cohort_size, postgres)


def _fill(
    session: Session,
    league: League,
    week: str,
    by_tier: Mapping[int, list[int]],
    size: int,
    postgres: bool,
) -> dict[int, int]:
    """Seat every tier's joiners: top up the open cohorts, create the new ones, one statement
    each for all tiers."""
    open_cohorts: dict[int, list[OpenCohort]] = defaultdict(list)
    for cohort_id, tier, filled in session.execute(
        select(LeagueCohort.id, LeagueCohort.tier, LeagueCohort.size).where(
            LeagueCohort.league_id == league.id,
            LeagueCohort.week == week,
            LeagueCohort.tier.in_(list(by_tier)),
            LeagueCohort.size < size,
        )
    ):
        open_cohorts[int(tier)].append(OpenCohort(int(cohort_id), int(filled)))
    topped: list[dict[str, int]] = []
    fresh: list[dict[str, Any]] = []
    seats: list[tuple[list[int], int | None, int]] = []  # (players, cohort id or None, tier)
    for tier in sorted(by_tier):
        players = sorted(by_tier[tier])
        plan = place(open_cohorts[tier], len(players), size)
        at = 0
        for cohort_id, n in plan.existing:
            topped.append({"cid": cohort_id, "n": n})
            seats.append((players[at : at + n], cohort_id, tier))
            at += n
        for n in plan.new:
            fresh.append(
                {
                    "tenant_id": league.tenant_id,
                    "league_id": league.id,
                    "week": week,
                    "tier": tier,
                    "size": n,
                }
            )
            seats.append((players[at : at + n], None, tier))
            at += n
    if topped:
        _top_up(session, topped, size, postgres)
    new_ids: list[int] = []
    if fresh:
        new_ids = [
            int(i)
            for i in session.scalars(
                insert(LeagueCohort).returning(LeagueCohort.id, sort_by_parameter_order=True),
                fresh,
            )
        ]
    created = iter(new_ids)
    rows: list[dict[str, Any]] = []
    for players, cohort_id, tier in seats:
        cohort = cohort_id if cohort_id is not None else next(created)
        rows.extend(
            {
                "tenant_id": league.tenant_id,
                "league_id": league.id,
                "week": week,
                "player_id": pid,
                "cohort_id": cohort,
                "tier": tier,
            }
            for pid in players
        )
    if postgres:
        session.execute(
            text(
                "INSERT INTO league_memberships"
                " (tenant_id, league_id, week, player_id, cohort_id, tier)"
                " SELECT :tenant, :league, :week, m.p, m.c, m.t FROM unnest("
                "CAST(:pids AS bigint[]), CAST(:cids AS bigint[]), CAST(:tiers AS int[]))"
                " AS m(p, c, t)"
            ),
            {
                "tenant": league.tenant_id,
                "league": league.id,
                "week": week,
                "pids": [r["player_id"] for r in rows],
                "cids": [r["cohort_id"] for r in rows],
                "tiers": [r["tier"] for r in rows],
            },
        )
    else:
        session.execute(insert(LeagueMembership), rows)
    return {r["player_id"]: r["cohort_id"] for r in rows}


def _top_up(session: Session, topped: list[dict[str, int]], size: int, postgres: bool) -> None:
    """Grow the open cohorts by the planned counts; refuse to overfill (only possible without
    the league lock, which would be a bug)."""
    if postgres:
        done = session.execute(
            text(
                "UPDATE league_cohorts AS c SET size = c.size + m.n"
                " FROM unnest(CAST(:cids AS bigint[]), CAST(:ns AS int[])) AS m(cid, n)"
                " WHERE c.id = m.cid AND c.size + m.n <= :size"
            ),
            {"cids": [t["cid"] for t in topped], "ns": [t["n"] for t in topped], "size": size},
        ).rowcount
    else:
        done = 0
        for item in topped:
            done += session.execute(
                update(LeagueCohort)
                .where(LeagueCohort.id == item["cid"], LeagueCohort.size + item["n"] <= size)
                .values(size=LeagueCohort.size + item["n"])
            ).rowcount
    if done != len(topped):  # pragma: no cover - only without the league lock
        raise RuntimeError("an open cohort filled up under us")


def insert_ignore(model: Any, postgres: bool, keys: list[str]) -> Any:
    if postgres:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing(index_elements=keys)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing(index_elements=keys)


def now_in(session: Session) -> datetime:
    """The database's clock, for callers that must agree with ledger ``created_at``."""
    return session.scalar(select(func.now()))  # type: ignore[return-value]
