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

from sqlalchemy import (
    BigInteger,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from engine.leagues import (
    LeagueConfig,
    OpenCohort,
    Window,
    WindowKind,
    place,
    previous_week,
)
from questline.bulk import id_in
from questline.league_models import (
    League,
    LeagueCohort,
    LeagueMembership,
    LeaguePlayer,
    LeagueWeek,
    PlayerGroup,
)
from questline.models import Tenant, XpLedger

COURSE_PREFIX = "course:"


def _in_ids(session: Session, column: Any, ids: Iterable[int]) -> Any:
    """``column IN ids`` with one array parameter on PostgreSQL (``questline.bulk.id_in``)."""
    return id_in(column, list(ids), session.get_bind().dialect.name == "postgresql")


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

    def sums(amount: Any, created: Any) -> list[Any]:
        return [
            func.sum(case((and_(created >= w.start, created < w.end), amount), else_=0))
            for w in windows.values()
        ]

    if player_ids is not None and session.get_bind().dialect.name == "postgresql":
        # Per player through its (tenant, player) index, whatever the planner believes: with
        # stale statistics (a young table) it chose to read the tenant's whole ledger for an
        # "= ANY(ids)" filter. LATERAL makes the per-player index probe the only plan.
        literal = "{" + ",".join(str(int(p)) for p in player_ids) + "}"
        wanted = select(
            func.unnest(cast(bindparam("ids", literal, type_=Text), ARRAY(BigInteger))).label("pid")
        ).subquery("w")
        rows = (
            select(XpLedger.course, XpLedger.amount, XpLedger.created_at)
            .where(
                XpLedger.tenant_id == tenant_id,
                XpLedger.player_id == wanted.c.pid,
                XpLedger.created_at >= earliest,
            )
            .lateral("l")
        )
        query = (
            select(wanted.c.pid, rows.c.course, *sums(rows.c.amount, rows.c.created_at))
            .select_from(wanted.join(rows, true()))
            .group_by(wanted.c.pid, rows.c.course)
        )
    else:
        query = (
            select(XpLedger.player_id, XpLedger.course, *sums(XpLedger.amount, XpLedger.created_at))
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


GROUP_PREFIX = "group:"


def join_groups(session: Session, tenant_id: int, pairs: Iterable[tuple[str, int]]) -> None:
    """Record (group id, player) memberships seen on events; called in the award transaction,
    so a group board never lists a player PostgreSQL does not know is a member."""
    rows = [
        {"tenant_id": tenant_id, "group_id": group, "player_id": pid}
        for group, pid in sorted(set(pairs))
    ]
    if rows:
        postgres = session.get_bind().dialect.name == "postgresql"
        keys = ["tenant_id", "group_id", "player_id"]
        session.execute(insert_ignore(PlayerGroup, postgres, keys), rows)


def groups_of(
    session: Session, tenant_id: int, player_ids: Iterable[int] | None = None
) -> dict[int, list[str]]:
    """{player: group ids} for the given players (every member of the tenant with None)."""
    query = select(PlayerGroup.player_id, PlayerGroup.group_id).where(
        PlayerGroup.tenant_id == tenant_id
    )
    if player_ids is not None:
        query = query.where(_in_ids(session, PlayerGroup.player_id, player_ids))
    out: dict[int, list[str]] = defaultdict(list)
    for pid, group in session.execute(query):
        out[int(pid)].append(str(group))
    return dict(out)


def group_boards(
    tenant_scores: Mapping[int, int], groups: Mapping[int, Iterable[str]]
) -> dict[str, dict[int, int]]:
    """Group boards (``group:<id>``) from tenant-wide scores: a group board ranks its members
    by the XP they earned anywhere in the tenant during the window, like the tenant board."""
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for pid, xp in tenant_scores.items():
        if xp > 0:
            for group in groups.get(pid, ()):
                out[GROUP_PREFIX + group][pid] = xp
    return dict(out)


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
        query = query.where(_in_ids(session, XpLedger.player_id, player_ids))
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
        query = query.where(_in_ids(session, LeagueMembership.player_id, player_ids))
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


# The whole placement of a batch on PostgreSQL, one statement, run under the league lock (its
# snapshot is taken after the lock is granted, so the membership re-check and the open cohorts
# it reads are current). The same arithmetic as engine.leagues.place: per tier, joiners in
# player id order fill the open cohorts fullest first (size descending, then id), then new
# cohorts of ``size``; the test suite holds it to the engine's plan. New cohort ids are drawn
# from the sequence first, so memberships can name them in the same statement.
_JOIN = """
WITH want AS (
    -- LATERAL ... LIMIT 1: one index probe per id, never a scan of the week's memberships
    -- (a hash anti-join over a million rows per batch, if estimates go stale as they grow).
    SELECT DISTINCT p.id AS player_id FROM unnest(CAST(:ids AS bigint[])) AS p(id)
    LEFT JOIN LATERAL (
        SELECT 1 AS seated FROM league_memberships AS m
        WHERE m.league_id = :league AND m.week = :week AND m.player_id = p.id LIMIT 1
    ) AS s ON true
    WHERE s.seated IS NULL
), wk AS (
    INSERT INTO league_weeks (tenant_id, league_id, week, starts_at, ends_at, status)
    VALUES (:tenant, :league, :week, :start, :end, 'open')
    ON CONFLICT (league_id, week) DO NOTHING
), newcomers AS (
    INSERT INTO league_players (league_id, player_id, tenant_id, tier)
    SELECT :league, want.player_id, :tenant, 0 FROM want
    ON CONFLICT (league_id, player_id) DO NOTHING
), joiner AS (
    SELECT w.player_id, t.tier,
           row_number() OVER (PARTITION BY t.tier ORDER BY w.player_id) AS k
    FROM want AS w
    LEFT JOIN league_players AS lp ON lp.league_id = :league AND lp.player_id = w.player_id
    CROSS JOIN LATERAL (SELECT least(greatest(coalesce(lp.tier, 0), 0), :top) AS tier) AS t
), open AS (
    SELECT c.id, c.tier, :size - c.size AS room,
           sum(:size - c.size) OVER (PARTITION BY c.tier ORDER BY c.size DESC, c.id) AS upto
    FROM league_cohorts AS c
    WHERE c.league_id = :league AND c.week = :week AND c.size < :size
      AND c.tier IN (SELECT tier FROM joiner)
), room AS (
    SELECT tier, sum(room) AS room FROM open GROUP BY tier
), placed AS (
    SELECT j.player_id, j.tier, o.id AS cohort_id
    FROM joiner AS j
    JOIN open AS o ON o.tier = j.tier AND j.k > o.upto - o.room AND j.k <= o.upto
), overflow AS (
    SELECT j.player_id, j.tier, (j.k - coalesce(r.room, 0) - 1) / :size AS n
    FROM joiner AS j LEFT JOIN room AS r ON r.tier = j.tier
    WHERE j.k > coalesce(r.room, 0)
), fresh AS MATERIALIZED (
    SELECT tier, n, count(*) AS size,
           nextval(pg_get_serial_sequence('league_cohorts', 'id')) AS id
    FROM overflow GROUP BY tier, n
), made AS (
    INSERT INTO league_cohorts (id, tenant_id, league_id, week, tier, size)
    SELECT id, :tenant, :league, :week, tier, size FROM fresh
), topped AS (
    UPDATE league_cohorts AS c SET size = c.size + t.n
    FROM (SELECT cohort_id, count(*) AS n FROM placed GROUP BY cohort_id) AS t
    WHERE c.id = t.cohort_id
)
INSERT INTO league_memberships (tenant_id, league_id, week, player_id, cohort_id, tier)
SELECT :tenant, :league, :week, player_id, cohort_id, tier FROM placed
UNION ALL
SELECT :tenant, :league, :week, o.player_id, f.id, o.tier
FROM overflow AS o JOIN fresh AS f ON f.tier = o.tier AND f.n = o.n
RETURNING player_id, cohort_id
"""


# The ids of a batch already seated this week, one index probe per id. An ``IN (...)`` list of
# 500 parameters was planned as a scan of the week's memberships on a freshly vacuumed table
# (440 ms a batch at 1,000,000 members instead of a few), and its text changed with the list's
# length; one array parameter keeps one statement and one plan.
_SEATED = """
SELECT p.id FROM unnest(CAST(:ids AS bigint[])) AS p(id)
JOIN LATERAL (
    SELECT 1 FROM league_memberships AS m
    WHERE m.league_id = :league AND m.week = :week AND m.player_id = p.id LIMIT 1
) AS s ON true
"""


def _seated(session: Session, league: League, week: str, player_ids: set[int]) -> set[int]:
    rows = session.execute(
        text(_SEATED), {"ids": sorted(player_ids), "league": league.id, "week": week}
    )
    return {int(p) for (p,) in rows}


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
    at a time anyway). On PostgreSQL a batch costs three round trips whatever its size and
    tiers: the seated check (most calls stop here: the players already play this week), the
    lock, and one statement that plans and writes the placement (``_JOIN``). SQLite plans in
    Python (``engine.leagues.place``) and writes with one statement per table.
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
    if postgres:
        wanted -= _seated(session, league, week.key, wanted)
    else:
        wanted -= memberships(session, league, week.key, wanted).keys()
    if not wanted:
        return {}
    config = league_config(league)
    if postgres:
        _lock_league(session, league.id)
        rows = session.execute(
            text(_JOIN),
            {
                "ids": sorted(wanted),
                "tenant": league.tenant_id,
                "league": league.id,
                "week": week.key,
                "start": week.start,
                "end": week.end,
                "size": config.cohort_size,
                "top": len(config.tiers) - 1,
            },
        )
        return {int(p): int(c) for p, c in rows}
    ensure_week(session, league, week, postgres)
    session.execute(
        insert_ignore(LeaguePlayer, postgres, ["league_id", "player_id"]),
        [
            {"league_id": league.id, "player_id": p, "tenant_id": league.tenant_id, "tier": 0}
            for p in sorted(wanted)
        ],
    )
    by_tier: dict[int, list[int]] = defaultdict(list)
    for pid, tier in session.execute(
        select(LeaguePlayer.player_id, LeaguePlayer.tier).where(
            LeaguePlayer.league_id == league.id, _in_ids(session, LeaguePlayer.player_id, wanted)
        )
    ):
        by_tier[max(0, min(int(tier), len(config.tiers) - 1))].append(int(pid))
    return _fill(session, league, week.key, by_tier, config.cohort_size)


def _fill(
    session: Session,
    league: League,
    week: str,
    by_tier: Mapping[int, list[int]],
    size: int,
) -> dict[int, int]:
    """Seat every tier's joiners on SQLite: top up the open cohorts, create the new ones."""
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
    rows: list[dict[str, Any]] = []
    for tier in sorted(by_tier):
        players = sorted(by_tier[tier])
        plan = place(open_cohorts[tier], len(players), size)
        at = 0
        for cohort_id, n in plan.existing:
            session.execute(
                update(LeagueCohort)
                .where(LeagueCohort.id == cohort_id)
                .values(size=LeagueCohort.size + n)
            )
            rows.extend(_seat(league, week, p, cohort_id, tier) for p in players[at : at + n])
            at += n
        for n in plan.new:
            cohort = LeagueCohort(
                tenant_id=league.tenant_id, league_id=league.id, week=week, tier=tier, size=n
            )
            session.add(cohort)
            session.flush()
            rows.extend(_seat(league, week, p, cohort.id, tier) for p in players[at : at + n])
            at += n
    if rows:
        session.execute(insert(LeagueMembership), rows)
    return {r["player_id"]: r["cohort_id"] for r in rows}


def _seat(league: League, week: str, player_id: int, cohort_id: int, tier: int) -> dict[str, Any]:
    return {
        "tenant_id": league.tenant_id,
        "league_id": league.id,
        "week": week,
        "player_id": player_id,
        "cohort_id": cohort_id,
        "tier": tier,
    }


def insert_ignore(model: Any, postgres: bool, keys: list[str]) -> Any:
    if postgres:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing(index_elements=keys)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing(index_elements=keys)


def now_in(session: Session) -> datetime:
    """The database's clock, for callers that must agree with ledger ``created_at``."""
    return session.scalar(select(func.now()))  # type: ignore[return-value]
