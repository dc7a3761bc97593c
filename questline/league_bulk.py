"""The week close on PostgreSQL, set-based: a million members in seconds, not minutes.

Nothing of a close crosses the wire row by row. PostgreSQL ranks every cohort itself
(``_RANKED``: the week's ledger sums joined to the memberships, ``row_number()`` per cohort,
zones from the per-tier promote/demote counts passed as arrays) into a temporary table, and every
write is one statement from it:

* promotion: one ``UPDATE league_players ... FROM`` the ranking, guarded by ``tier_week``;
* history: ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into ``league_results``;
* rewards: the ``league.finished`` inbox events built with ``json_build_object`` in the same
  shape as ``league_rewards.finished_event`` (a test holds the two equal);
* outbound webhooks: one ``webhook_outbox`` row per member and subscription that wants
  ``league.finished``, keyed like ``webhooks.outbound.record_many`` keys them (same
  ``message_id``), so a re-run announces nothing twice.

The ranking is the same arithmetic as ``engine.leagues.close_cohort`` (a test compares them on
random cohorts). SQLite (the embedded default, small by nature) keeps the plain Python path in
``workers.leagues``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from engine.leagues import LeagueConfig, Window
from questline.league_models import League
from questline.league_repo import REWARD_KEY_PREFIX, scope_course

_TEMP = "tmp_league_close"

# Every member of the week with their league XP, last league activity, rank, zone and outcome.
# Ranking as engine.leagues.close_cohort: members with positive XP by XP descending then player
# id; members without (XP reversed: "left") after them by player id, in the safe zone, tier
# kept. Of the active ones the top min(promote, active) are promoted and the bottom
# min(demote, active - promoted) demoted; :ups / :downs hold each tier's effective counts (the
# top tier never promotes, the bottom never demotes).
_RANKED = f"""
WITH xp AS (
    SELECT l.player_id, sum(l.amount) AS xp, max(l.occurred_at) AS last_at
    FROM xp_ledger AS l
    WHERE l.tenant_id = :tenant AND l.created_at >= :start AND l.created_at < :end
      AND l.idempotency_key NOT LIKE :reward_like
      AND (CAST(:course AS text) IS NULL OR l.course = :course)
    GROUP BY l.player_id
), m AS (
    SELECT m.cohort_id, m.player_id, m.tier, coalesce(x.xp, 0) AS xp, x.last_at
    FROM league_memberships AS m LEFT JOIN xp AS x ON x.player_id = m.player_id
    WHERE m.tenant_id = :tenant AND m.league_id = :league AND m.week = :week
), r AS (
    SELECT m.*,
        row_number() OVER (PARTITION BY m.cohort_id
                           ORDER BY m.xp > 0 DESC, CASE WHEN m.xp > 0 THEN m.xp END DESC,
                                    m.player_id) AS rank,
        count(*) OVER (PARTITION BY m.cohort_id) AS cohort_members,
        count(*) FILTER (WHERE m.xp > 0) OVER (PARTITION BY m.cohort_id) AS active
    FROM m
), z AS (
    SELECT r.*, CASE
        WHEN r.xp <= 0 THEN 'safe'
        WHEN r.rank <= least((CAST(:ups AS int[]))[r.tier + 1], r.active) THEN 'promotion'
        WHEN r.rank > r.active - least((CAST(:downs AS int[]))[r.tier + 1],
                                       r.active - least((CAST(:ups AS int[]))[r.tier + 1],
                                                        r.active)) THEN 'demotion'
        ELSE 'safe' END AS zone
    FROM r
)
INSERT INTO {_TEMP} (cohort_id, player_id, tier, rank, cohort_members, xp, zone, outcome,
                    next_tier, last_at)
SELECT cohort_id, player_id, tier, rank, cohort_members, xp, zone,
    CASE WHEN xp <= 0 THEN 'left' WHEN zone = 'promotion' THEN 'promoted'
         WHEN zone = 'demotion' THEN 'demoted' ELSE 'stayed' END,
    CASE WHEN xp <= 0 THEN tier WHEN zone = 'promotion' THEN tier + 1
         WHEN zone = 'demotion' THEN tier - 1 ELSE tier END,
    last_at
FROM z
"""

_PROMOTE = f"""
UPDATE league_players AS lp SET tier = t.next_tier, tier_week = :week
FROM {_TEMP} AS t
WHERE t.next_tier <> t.tier AND lp.league_id = :league AND lp.player_id = t.player_id
  AND (lp.tier_week IS NULL OR lp.tier_week < :week)
"""

_COUNTS = f"""
SELECT count(*), count(*) FILTER (WHERE outcome = 'promoted'),
       count(*) FILTER (WHERE outcome = 'demoted')
FROM {_TEMP}
"""

_RESULTS = f"""
INSERT INTO league_results (tenant_id, league_id, week, cohort_id, player_id, tier, rank,
                            cohort_members, xp, zone, outcome, next_tier)
SELECT :tenant, :league, :week, cohort_id, player_id, tier, rank, cohort_members, xp, zone,
       outcome, next_tier
FROM {_TEMP}
ON CONFLICT ON CONSTRAINT uq_league_result DO NOTHING
"""

# One row per member and subscription that wants league.finished; key and message_id as
# webhooks.outbound.record_many makes them ("msg_" + the first 32 hex digits of
# sha256("<subscription id>/<key>")), payload as league_rewards.finished_payload.
_OUTBOX = f"""
WITH subs AS (
    SELECT s.id FROM webhook_subscriptions AS s
    WHERE s.tenant_id = :tenant AND s.disabled_at IS NULL
      AND CAST(s.event_types AS jsonb) ? 'league.finished'
), msg AS (
    SELECT 'league:' || CAST(:league AS text) || ':' || CAST(:week AS text) || ':'
           || t.player_id AS key,
        jsonb_build_object(
            'league', CAST(:scope AS text), 'week', CAST(:week AS text),
            'player_id', t.player_id, 'cohort_id', t.cohort_id,
            'tier', (CAST(:tiers AS text[]))[t.tier + 1],
            'next_tier', (CAST(:tiers AS text[]))[t.next_tier + 1],
            'rank', t.rank, 'cohort_members', t.cohort_members, 'xp', t.xp,
            'zone', t.zone, 'outcome', t.outcome) AS payload
    FROM {_TEMP} AS t
)
INSERT INTO webhook_outbox (tenant_id, subscription_id, key, message_id, event_type, payload,
                            status, attempts, next_attempt_at, created_at)
SELECT :tenant, subs.id, msg.key,
       'msg_' || left(encode(sha256(convert_to(subs.id || '/' || msg.key, 'UTF8')), 'hex'), 32),
       'league.finished', msg.payload, 'pending', 0, :now, :now
FROM subs CROSS JOIN msg
ON CONFLICT ON CONSTRAINT uq_webhook_outbox_key DO NOTHING
"""

# One event per member known by an actor id or an email (the actor id preferred), dated at
# their last league activity of the week (see league_rewards for why). Built as ``json`` (text)
# and parsed into ``jsonb`` once: building ``jsonb`` and printing it back for ``raw`` cost twice
# the server time at 100,000 members.
_EVENTS = f"""
WITH ident AS (
    SELECT DISTINCT ON (i.player_id) i.player_id, i.kind, i.value
    FROM player_identities AS i JOIN {_TEMP} AS t ON t.player_id = i.player_id
    WHERE i.tenant_id = :tenant AND i.kind IN ('actor', 'email')
    ORDER BY i.player_id, i.kind, i.value
), ev AS (
    SELECT t.player_id, coalesce(t.last_at, CAST(:end AS timestamptz)) AS at,
      json_strip_nulls(json_build_object(
        'id', CAST(:league AS text) || ':' || CAST(:week AS text) || ':' || t.player_id,
        'source', 'league',
        'type', 'league.finished',
        'actor', CASE WHEN ident.kind = 'actor' THEN json_build_object('id', ident.value)
                      ELSE json_build_object('email', ident.value) END,
        'occurred_at', to_char(coalesce(t.last_at, CAST(:end AS timestamptz)) AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'object', json_build_object('id', CAST(:scope AS text) || ':' || CAST(:week AS text),
                                     'type', t.outcome),
        'context', CASE WHEN CAST(:course AS text) IS NULL THEN NULL
                        ELSE json_build_object('course', CAST(:course AS text)) END,
        'result', json_build_object(
            'score', CASE WHEN t.cohort_members <= 1 THEN CAST(1.0 AS float8)
                          ELSE CAST(round(1 - CAST(t.rank - 1 AS numeric)
                                          / (t.cohort_members - 1), 4) AS float8) END,
            'passed', t.outcome = 'promoted'),
        'extensions', json_build_object(
            'league', CAST(:scope AS text), 'week', CAST(:week AS text),
            'cohort_id', t.cohort_id,
            'tier', (CAST(:tiers AS text[]))[t.tier + 1],
            'next_tier', (CAST(:tiers AS text[]))[t.next_tier + 1],
            'rank', t.rank, 'cohort_members', t.cohort_members, 'xp', t.xp,
            'zone', t.zone, 'outcome', t.outcome))) AS canonical
    FROM {_TEMP} AS t
    JOIN ident ON ident.player_id = t.player_id
)
INSERT INTO inbox_events (tenant_id, source, event_key, event_type, raw, canonical,
                          occurred_at, received_at, status, attempts)
SELECT :tenant, 'league', CAST(:league AS text) || ':' || CAST(:week AS text) || ':'
       || ev.player_id, 'league.finished',
       CAST(ev.canonical AS text), CAST(ev.canonical AS jsonb), ev.at, :now, 'pending', 0
FROM ev
ON CONFLICT ON CONSTRAINT uq_inbox_event DO NOTHING
"""


@dataclass(frozen=True)
class Ranked:
    """What a ranking of one league week holds: members and how many move up and down."""

    members: int
    promoted: int
    demoted: int


def _params(league: League, config: LeagueConfig, week: Window) -> dict[str, Any]:
    tiers = range(len(config.tiers))
    return {
        "tenant": league.tenant_id,
        "league": league.id,
        "week": week.key,
        "start": week.start,
        "end": week.end,
        "scope": league.scope,
        "course": scope_course(league.scope),
        "reward_like": REWARD_KEY_PREFIX + "%",  # "league|": no LIKE wildcards in it
        "tiers": list(config.tiers),
        "ups": [config.promote_count(t) for t in tiers],
        "downs": [config.demote_count(t) for t in tiers],
    }


def rank_week(session: Session, league: League, config: LeagueConfig, week: Window) -> Ranked:
    """Rank every cohort of the week into this transaction's temporary table (emptied at
    commit) and count it. Deterministic: memberships and the week's ledger only, so the
    history step after a crash ranks exactly as the promotion step did."""
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_TEMP} (cohort_id bigint, player_id bigint,"
            " tier int, rank int, cohort_members int, xp bigint, zone text, outcome text,"
            " next_tier int, last_at timestamptz) ON COMMIT DELETE ROWS"
        )
    )
    session.execute(text(f"TRUNCATE {_TEMP}"))
    session.execute(text(_RANKED), _params(league, config, week))
    # Statistics for the joins that follow (a temporary table has none of its own).
    session.execute(text(f"ANALYZE {_TEMP}"))
    members, promoted, demoted = session.execute(text(_COUNTS)).one()
    return Ranked(int(members), int(promoted), int(demoted))


def promote(session: Session, league: League, week: str) -> int:
    """Set each ranked mover's next tier, once per week (``tier_week`` makes a re-run change
    nothing); returns how many tiers changed now."""
    done = session.execute(text(_PROMOTE), {"week": week, "league": league.id}).rowcount
    return int(done or 0)


def write_history(
    session: Session, league: League, config: LeagueConfig, week: Window, now: datetime
) -> tuple[int, int]:
    """Results, ``league.finished`` inbox events and outbound webhook messages from the ranking
    of this transaction (``rank_week`` first); returns (inbox events, outbox rows) stored, both
    0 on a re-run: every insert ignores what exists."""
    params = {**_params(league, config, week), "now": now}
    session.execute(text(_RESULTS), params)
    events = session.execute(text(_EVENTS), {**params, "league": str(league.id)}).rowcount
    messages = session.execute(text(_OUTBOX), params).rowcount
    return int(events or 0), int(messages or 0)
