"""League rewards by rule: each finished membership becomes a ``league.finished`` inbox event.

The week close writes these events into the inbox in the same transaction as the results, so a
result and its event cannot disagree, and the inbox's unique (tenant, source, key) makes a re-run
add nothing. The workers then run them through the rules engine like any other activity, so a
rule set grants league rewards with the rules it already has, for example::

    xp:
      - id: promoted-bonus
        on: league.finished
        when: {object_type: promoted}      # promoted | stayed | demoted | left
        points: 50
      - id: podium
        on: league.finished
        when: {score_at_least: 0.9}        # score = 1 - (rank - 1) / cohort members

and badges count ``league.finished`` events like any other (``of: {on: league.finished}``).

Two choices keep a reward from looking like learner activity:

* the event is dated at the member's last XP-earning activity of the week, a day their streak
  already holds, so it never extends a streak or opens a new streak day;
* reward XP (ledger keys ``league|...``) is left out of league XP (``league_repo``), so a reward
  paid after the week closed neither joins the player to the new week's cohort nor counts there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.events import ActivityEvent, Actor
from engine.events import Result as EventResult
from engine.leagues import LeagueConfig, Result, Window
from questline.ingest import IngestReport, store_events
from questline.league_models import League, LeagueMembership
from questline.league_repo import league_xp_filter, scope_course
from questline.models import PlayerIdentity, XpLedger
from webhooks.outbound import Outbound, record_many

SOURCE = "league"
EVENT_TYPE = "league.finished"
CHUNK = 5000


def event_key(league_id: int, week: str, player_id: int) -> str:
    return f"{league_id}:{week}:{player_id}"


def _actors(session: Session, league: League, week: str) -> dict[int, Actor]:
    """The identity each member is known by in the inbox: their external actor id, else email.

    Players known only by other kinds of identity (none today) get no event; logged by caller."""
    rows = session.execute(
        select(PlayerIdentity.player_id, PlayerIdentity.kind, PlayerIdentity.value)
        .join(
            LeagueMembership,
            (LeagueMembership.player_id == PlayerIdentity.player_id)
            & (LeagueMembership.league_id == league.id)
            & (LeagueMembership.week == week),
        )
        .where(
            PlayerIdentity.tenant_id == league.tenant_id,
            PlayerIdentity.kind.in_(["actor", "email"]),
        )
    )
    best: dict[int, tuple[str, str]] = {}
    for pid, kind, value in rows:
        pid = int(pid)
        if pid not in best or (kind, value) < best[pid]:  # "actor" sorts before "email"
            best[pid] = (kind, value)
    return {
        pid: Actor(id=value) if kind == "actor" else Actor(email=value)
        for pid, (kind, value) in best.items()
    }


def _last_activity(session: Session, league: League, week: Window) -> dict[int, datetime]:
    """Each player's latest ``occurred_at`` among the league XP of the week."""
    query = (
        select(XpLedger.player_id, func.max(XpLedger.occurred_at))
        .where(*league_xp_filter(league, week))
        .group_by(XpLedger.player_id)
    )
    return {
        int(pid): at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite returns naive UTC
        for pid, at in session.execute(query)
    }


def finished_event(
    league: League,
    config: LeagueConfig,
    week: str,
    cohort_id: int,
    result: Result,
    members: int,
    actor: Actor,
    occurred_at: datetime,
) -> ActivityEvent:
    """The canonical ``league.finished`` event of one member's week."""
    score = 1.0 if members <= 1 else round(1 - (result.rank - 1) / (members - 1), 4)
    return ActivityEvent(
        id=event_key(league.id, week, result.player_id),
        source=SOURCE,
        type=EVENT_TYPE,
        actor=actor,
        occurred_at=occurred_at,
        object_id=f"{league.scope}:{week}",
        object_type=result.outcome,
        course=scope_course(league.scope),
        result=EventResult(score=score, passed=result.outcome == "promoted"),
        extensions={
            "league": league.scope,
            "week": week,
            "cohort_id": cohort_id,
            "tier": config.tier_name(result.tier),
            "next_tier": config.tier_name(result.next_tier),
            "rank": result.rank,
            "cohort_members": members,
            "xp": result.xp,
            "zone": result.zone,
            "outcome": result.outcome,
        },
    )


def finished_payload(
    league: League, config: LeagueConfig, week: str, cohort_id: int, result: Result, members: int
) -> dict[str, Any]:
    """The ``league.finished`` outbound webhook payload of one member's week (the SQL of
    ``league_bulk._OUTBOX`` builds the same; a test holds them equal)."""
    return {
        "league": league.scope,
        "week": week,
        "player_id": result.player_id,
        "cohort_id": cohort_id,
        "tier": config.tier_name(result.tier),
        "next_tier": config.tier_name(result.next_tier),
        "rank": result.rank,
        "cohort_members": members,
        "xp": result.xp,
        "zone": result.zone,
        "outcome": result.outcome,
    }


def outbound_key(league_id: int, week: str, player_id: int) -> str:
    """The outbox key of a member's ``league.finished`` message: one per subscription ever."""
    return f"league:{league_id}:{week}:{player_id}"


def announce_finished(
    session: Session,
    league: League,
    config: LeagueConfig,
    week: str,
    rows: Sequence[tuple[int, Result, int]],
    now: datetime,
) -> int:
    """Write the outbound ``league.finished`` messages in the caller's transaction (SQLite
    path; PostgreSQL does it in one statement in ``league_bulk``); returns rows written."""
    messages = [
        Outbound(
            EVENT_TYPE,
            finished_payload(league, config, week, cohort_id, result, members),
            outbound_key(league.id, week, result.player_id),
        )
        for cohort_id, result, members in rows
    ]
    return record_many(session, league.tenant_id, messages, now=now)


def emit_finished(
    session: Session,
    league: League,
    config: LeagueConfig,
    week: Window,
    rows: Sequence[tuple[int, Result, int]],
    now: datetime,
) -> tuple[int, int]:
    """Store one ``league.finished`` inbox event per member; (stored, skipped without identity).

    Runs inside the caller's transaction (the history write). Already stored events are kept
    as they are (the inbox ignores a duplicate key), so a re-run stores nothing new.
    """
    actors = _actors(session, league, week.key)
    last = _last_activity(session, league, week)
    events: list[tuple[ActivityEvent, Any]] = []
    skipped = 0
    for cohort_id, result, members in rows:
        actor = actors.get(result.player_id)
        if actor is None:
            skipped += 1
            continue
        at = last.get(result.player_id, week.end)
        event = finished_event(league, config, week.key, cohort_id, result, members, actor, at)
        events.append((event, event.to_dict()))
    stored = 0
    for start in range(0, len(events), CHUNK):
        report = IngestReport()
        store_events(session, league.tenant_id, events[start : start + CHUNK], now, report)
        stored += len(report.accepted)
    return stored, skipped
