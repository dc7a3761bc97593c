"""The week close's bulk writes on PostgreSQL: a million members in seconds, not minutes.

Row-by-row inserts through the ORM spent most of a rollover building and sending parameters
(50,000 members took 40 s on the shared bench machine). Here the results go in with one COPY
into a temporary table, and everything else is set-based SQL on the server:

* promotion: one ``UPDATE ... FROM unnest(ids, tiers)`` (two array parameters, no SQL text that
  grows with the number of moves);
* history: ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` from the temporary table into
  ``league_results`` and ``league_finished_events``;
* rewards: the ``league.finished`` inbox events built with ``jsonb_build_object`` in the same
  shape as ``league_rewards.finished_event`` (a test holds the two equal).

SQLite (the embedded default, small by nature) keeps the plain ORM path in ``workers.leagues``
and ``league_rewards``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from engine.leagues import LeagueConfig, Result, Window
from questline.league_models import League
from questline.league_repo import REWARD_KEY_PREFIX, scope_course

_TEMP = "tmp_league_close"

_PROMOTE = """
UPDATE league_players AS lp SET tier = m.next, tier_week = :week
FROM unnest(CAST(:pids AS bigint[]), CAST(:nexts AS int[])) AS m(pid, next)
WHERE lp.league_id = :league AND lp.player_id = m.pid
  AND (lp.tier_week IS NULL OR lp.tier_week < :week)
"""

_RESULTS = f"""
INSERT INTO league_results (tenant_id, league_id, week, cohort_id, player_id, tier, rank,
                            cohort_members, xp, zone, outcome, next_tier)
SELECT :tenant, :league, :week, cohort_id, player_id, tier, rank, cohort_members, xp, zone,
       outcome, next_tier
FROM {_TEMP}
ON CONFLICT ON CONSTRAINT uq_league_result DO NOTHING
"""

_FACTS = f"""
INSERT INTO league_finished_events (tenant_id, league_id, week, player_id, payload)
SELECT :tenant, :league, CAST(:week AS text), player_id, jsonb_build_object(
    'type', 'league.finished', 'league', CAST(:scope AS text), 'week', CAST(:week AS text),
    'player_id', player_id, 'tier', (CAST(:tiers AS text[]))[tier + 1],
    'next_tier', (CAST(:tiers AS text[]))[next_tier + 1], 'rank', rank,
    'cohort_members', cohort_members, 'xp', xp, 'outcome', outcome)
FROM {_TEMP}
ON CONFLICT ON CONSTRAINT uq_league_finished DO NOTHING
"""

# One event per member known by an actor id or an email (the actor id preferred), dated at
# their last league activity of the week (see league_rewards for why).
_EVENTS = f"""
WITH ident AS (
    SELECT DISTINCT ON (i.player_id) i.player_id, i.kind, i.value
    FROM player_identities AS i JOIN {_TEMP} AS t ON t.player_id = i.player_id
    WHERE i.tenant_id = :tenant AND i.kind IN ('actor', 'email')
    ORDER BY i.player_id, i.kind, i.value
), last AS (
    SELECT l.player_id, max(l.occurred_at) AS at
    FROM xp_ledger AS l
    WHERE l.tenant_id = :tenant AND l.created_at >= :start AND l.created_at < :end
      AND l.idempotency_key NOT LIKE :reward_like
      AND (CAST(:course AS text) IS NULL OR l.course = :course)
    GROUP BY l.player_id
), ev AS (
    SELECT t.player_id, coalesce(last.at, CAST(:end AS timestamptz)) AS at,
      jsonb_strip_nulls(jsonb_build_object(
        'id', CAST(:league AS text) || ':' || CAST(:week AS text) || ':' || t.player_id,
        'source', 'league',
        'type', 'league.finished',
        'actor', CASE WHEN ident.kind = 'actor' THEN jsonb_build_object('id', ident.value)
                      ELSE jsonb_build_object('email', ident.value) END,
        'occurred_at', to_char(coalesce(last.at, CAST(:end AS timestamptz)) AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'object', jsonb_build_object('id', CAST(:scope AS text) || ':' || CAST(:week AS text),
                                     'type', t.outcome),
        'context', CASE WHEN CAST(:course AS text) IS NULL THEN NULL
                        ELSE jsonb_build_object('course', CAST(:course AS text)) END,
        'result', jsonb_build_object(
            'score', CASE WHEN t.cohort_members <= 1 THEN CAST(1.0 AS float8)
                          ELSE CAST(round(1 - CAST(t.rank - 1 AS numeric)
                                          / (t.cohort_members - 1), 4) AS float8) END,
            'passed', t.outcome = 'promoted'),
        'extensions', jsonb_build_object(
            'league', CAST(:scope AS text), 'week', CAST(:week AS text),
            'cohort_id', t.cohort_id,
            'tier', (CAST(:tiers AS text[]))[t.tier + 1],
            'next_tier', (CAST(:tiers AS text[]))[t.next_tier + 1],
            'rank', t.rank, 'cohort_members', t.cohort_members, 'xp', t.xp,
            'zone', t.zone, 'outcome', t.outcome))) AS canonical
    FROM {_TEMP} AS t
    JOIN ident ON ident.player_id = t.player_id
    LEFT JOIN last ON last.player_id = t.player_id
)
INSERT INTO inbox_events (tenant_id, source, event_key, event_type, raw, canonical,
                          occurred_at, received_at, status, attempts)
SELECT :tenant, 'league', CAST(:league AS text) || ':' || CAST(:week AS text) || ':'
       || ev.player_id, 'league.finished',
       CAST(ev.canonical AS text), ev.canonical, ev.at, :now, 'pending', 0
FROM ev
ON CONFLICT ON CONSTRAINT uq_inbox_event DO NOTHING
"""


def promote(session: Session, league_id: int, week: str, moves: Sequence[tuple[int, int]]) -> None:
    """Set each (player, next tier) once per week: ``tier_week`` makes a re-run change nothing."""
    if moves:
        session.execute(
            text(_PROMOTE),
            {
                "week": week,
                "league": league_id,
                "pids": [p for p, _ in moves],
                "nexts": [t for _, t in moves],
            },
        )


def _fill_temp(session: Session, rows: Sequence[tuple[int, Result, int]]) -> None:
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_TEMP} (cohort_id bigint, player_id bigint,"
            " tier int, rank int, cohort_members int, xp bigint, zone text, outcome text,"
            " next_tier int) ON COMMIT DELETE ROWS"
        )
    )
    session.execute(text(f"TRUNCATE {_TEMP}"))
    raw: Any = session.connection().connection.driver_connection
    columns = "cohort_id, player_id, tier, rank, cohort_members, xp, zone, outcome, next_tier"
    with raw.cursor().copy(f"COPY {_TEMP} ({columns}) FROM STDIN") as copy:
        for cohort, r, n in rows:
            copy.write_row(
                (cohort, r.player_id, r.tier, r.rank, n, r.xp, r.zone, r.outcome, r.next_tier)
            )


def write_history(
    session: Session,
    league: League,
    config: LeagueConfig,
    week: Window,
    rows: Sequence[tuple[int, Result, int]],
    now: datetime,
) -> int:
    """Results, ``league.finished`` facts and inbox events in the caller's transaction; returns
    how many inbox events were stored (0 on a re-run: every insert ignores what exists)."""
    _fill_temp(session, rows)
    params: dict[str, Any] = {
        "tenant": league.tenant_id,
        "league": league.id,
        "week": week.key,
        "scope": league.scope,
        "tiers": list(config.tiers),
    }
    session.execute(text(_RESULTS), params)
    session.execute(text(_FACTS), params)
    stored = session.execute(
        text(_EVENTS),
        {
            **params,
            "league": str(league.id),
            "start": week.start,
            "end": week.end,
            "course": scope_course(league.scope),
            "reward_like": REWARD_KEY_PREFIX + "%",  # "league|": no LIKE wildcards in it
            "now": now,
        },
    ).rowcount
    return int(stored or 0)
