"""Process claimed inbox rows: engine decisions applied in ONE transaction, then Redis.

The shape (ARCHITECTURE "the way an event travels"):
1. claim up to N due pending rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers share);
2. resolve each actor to a player, lock those players in id order (no deadlocks), evaluate;
3. in the same transaction: batched ledger insert (unique idempotency keys), player aggregates,
   course totals, inbox rows marked applied;
4. after commit: absolute totals to the Redis boards in one pipeline (ZADD GT).
A batch that fails is retried row by row (savepoints), so one poison event fails alone, with
backoff, and lands in the dead-letter list after ``max_attempts``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from engine.counters import RuleCounters
from engine.decisions import (
    BadgeAwarded,
    CurrencyAwarded,
    LevelReached,
    QuestCompleted,
    StreakFreezeUsed,
    StreakMilestoneReached,
    XpAwarded,
)
from engine.evaluate import PlayerState, evaluate
from engine.events import ActivityEvent, Actor, InvalidEvent, read_stored
from engine.streaks import Streak
from identity.models import PlayerMerge
from identity.players import actor_key, resolve_players
from questline import metrics
from questline.bulk import id_in, insert_ignore_returning, update_rows, upsert_add_returning
from questline.currency import Credit, apply_credits
from questline.db import Database
from questline.ingest import upsert_ignore
from questline.leaderboards import Leaderboards, course_board
from questline.league_repo import join_groups
from questline.models import (
    InboxEvent,
    Player,
    PlayerBadge,
    PlayerCourseStats,
    PlayerInventory,
    Tenant,
    XpLedger,
)
from webhooks.outbound import Outbound, outbound_for, record_many
from workers.rulesets import active_rule_book

log = logging.getLogger("questline.worker")

BoardWrites = dict[tuple[int, str], dict[int, int]]


@dataclass
class BatchResult:
    claimed: int = 0
    applied: int = 0
    failed: int = 0
    dead: int = 0
    boards: BoardWrites = field(default_factory=dict)
    received: list[datetime] = field(default_factory=list)


@dataclass(frozen=True)
class Claimed:
    id: int
    tenant_id: int
    event: ActivityEvent
    received_at: datetime
    attempts: int
    # Applied before (a crashed job's row put back to pending): its effects are committed, so
    # it is marked applied again without evaluating, and cannot feed the rule counters twice.
    reapplied: bool = False


def utcnow() -> datetime:
    return datetime.now(UTC)


def claim(
    session: Session, limit: int, now: datetime, postgres: bool
) -> tuple[list[Claimed], list[tuple[Claimed, Exception]]]:
    """Lock up to ``limit`` due pending rows, oldest first: (parsed rows, unreadable rows)."""
    stmt = (
        select(
            InboxEvent.id,
            InboxEvent.tenant_id,
            InboxEvent.canonical,
            InboxEvent.received_at,
            InboxEvent.attempts,
            InboxEvent.processed_at,
        )
        .where(
            InboxEvent.status == "pending",
            or_(InboxEvent.next_attempt_at.is_(None), InboxEvent.next_attempt_at <= now),
        )
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True, of=InboxEvent)
    good: list[Claimed] = []
    bad: list[tuple[Claimed, Exception]] = []
    for row_id, tenant_id, canonical, received, attempts, processed in session.execute(stmt):
        try:
            event = read_stored(canonical)  # InvalidEvent: dead at once
        except InvalidEvent as exc:
            placeholder = ActivityEvent(
                id=str(canonical.get("id") if isinstance(canonical, dict) else row_id),
                source="?",
                type="?",
                actor=Actor(id="?"),
                occurred_at=now,
            )
            bad.append((Claimed(row_id, tenant_id, placeholder, _aware(received), attempts), exc))
            continue
        good.append(
            Claimed(row_id, tenant_id, event, _aware(received), attempts, processed is not None)
        )
    return good, bad


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _load_states(
    session: Session, player_ids: list[int], postgres: bool
) -> dict[int, tuple[PlayerState, str | None]]:
    stmt = (
        select(
            Player.id,
            Player.xp,
            Player.level,
            Player.streak_current,
            Player.streak_longest,
            Player.last_active_day,
            Player.timezone,
            Player.rule_state,
        )
        .where(id_in(Player.id, player_ids, postgres))
        .order_by(Player.id)
    )
    if postgres:
        stmt = stmt.with_for_update()
    out: dict[int, tuple[PlayerState, str | None]] = {}
    rows = session.execute(stmt).all()  # the player rows are locked from here on
    held = _held_badges(session, player_ids, postgres)
    freezes = _freezes(session, player_ids, postgres)
    for pid, xp, level, cur, longest, last_day, zone, rule_state in rows:
        streak = Streak(cur, longest, date.fromisoformat(last_day) if last_day else None)
        counters = RuleCounters.from_json(rule_state)
        state = PlayerState(xp, level, streak, counters, held.get(pid, {}), freezes.get(pid, 0))
        out[pid] = (state, zone)
    return out


FREEZE = "streak_freeze"


def _freezes(session: Session, player_ids: list[int], postgres: bool) -> dict[int, int]:
    rows = session.execute(
        select(PlayerInventory.player_id, PlayerInventory.quantity).where(
            id_in(PlayerInventory.player_id, player_ids, postgres), PlayerInventory.item == FREEZE
        )
    )
    return {pid: quantity for pid, quantity in rows}


def _save_freezes(
    session: Session, tenant_id: int, before: dict[int, PlayerState], after: dict[int, PlayerState]
) -> None:
    changed = [
        {"tenant_id": tenant_id, "player_id": pid, "item": FREEZE, "quantity": state.freezes}
        for pid, state in after.items()
        if state.freezes != before[pid].freezes
    ]
    if not changed:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(PlayerInventory)
    stmt = stmt.on_conflict_do_update(
        index_elements=["player_id", "item"], set_={"quantity": stmt.excluded.quantity}
    )
    session.execute(stmt, changed)


def _held_badges(
    session: Session, player_ids: list[int], postgres: bool
) -> dict[int, dict[str, tuple[int, int | None]]]:
    """Per player, the latest award of each badge and scope: (tier, expiry epoch). Revoked
    awards count as held, so revoking does not lead to the badge being awarded again."""
    out: dict[int, dict[str, tuple[int, int | None]]] = defaultdict(dict)
    if not player_ids:
        return out
    rows = session.execute(
        select(
            PlayerBadge.player_id,
            PlayerBadge.badge_id,
            PlayerBadge.scope,
            PlayerBadge.tier,
            PlayerBadge.expires_at,
        )
        .where(id_in(PlayerBadge.player_id, player_ids, postgres))
        .order_by(PlayerBadge.awarded_at, PlayerBadge.tier, PlayerBadge.id)
    )
    for pid, badge_id, scope, tier, expires in rows:
        expiry = int(_aware(expires).timestamp()) if expires is not None else None
        out[pid][f"{badge_id}|{scope}"] = (tier, expiry)
    return out


def apply_tenant_rows(
    session: Session,
    tenant_id: int,
    rows: list[Claimed],
    players: dict[tuple[str, str], int],
    now: datetime,
    postgres: bool,
) -> BoardWrites:
    """Evaluate and apply one tenant's rows inside the caller's transaction."""
    rules = active_rule_book(session, tenant_id, {row.event.course for row in rows})
    tenant_zone = session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"
    player_of = {row.id: players[actor_key(row.event.actor)] for row in rows}
    loaded = _load_states(session, sorted(set(player_of.values())), postgres)
    _refuse_merged(session, tenant_id, list(loaded), postgres)
    before = {pid: state for pid, (state, _zone) in loaded.items()}
    states = dict(before)
    zones = {pid: zone for pid, (_state, zone) in loaded.items()}

    ledger: list[dict[str, Any]] = []
    badges: list[dict[str, Any]] = []
    credits: list[Credit] = []
    notes: list[Outbound] = []  # outbound webhook messages, written in this same transaction
    for row in sorted(rows, key=lambda r: (r.event.occurred_at, r.id)):
        if row.reapplied:
            continue
        pid = player_of[row.id]
        if row.event.actor.timezone and row.event.actor.timezone != zones.get(pid):
            zones[pid] = row.event.actor.timezone
        zone = zones.get(pid) or tenant_zone
        decisions, states[pid] = evaluate(row.event, states[pid], rules, zone)
        for decision in decisions:
            note = outbound_for(pid, row.event.id, decision)
            if note is not None:
                notes.append(note)
            if isinstance(decision, XpAwarded):
                ledger.append(
                    {
                        "tenant_id": tenant_id,
                        "player_id": pid,
                        "idempotency_key": decision.idempotency_key,
                        "inbox_event_id": row.id,
                        "rule_id": decision.rule_id,
                        "amount": decision.amount,
                        "course": decision.course,
                        "explanation": decision.explanation,
                        "occurred_at": row.event.occurred_at,
                    }
                )
            elif isinstance(decision, BadgeAwarded):
                badges.append(
                    {
                        "tenant_id": tenant_id,
                        "player_id": pid,
                        "idempotency_key": decision.idempotency_key,
                        "badge_id": decision.badge_id,
                        "name": decision.name,
                        "tier": decision.tier,
                        "tier_name": decision.tier_name,
                        "scope": decision.course or "*",
                        "explanation": decision.explanation,
                        "inbox_event_id": row.id,
                        "awarded_at": decision.awarded_at,
                        "expires_at": decision.expires_at,
                    }
                )
            elif isinstance(decision, CurrencyAwarded):
                credits.append(
                    Credit(
                        pid,
                        decision.idempotency_key,
                        "rule",
                        decision.rule_id,
                        decision.amount,
                        decision.explanation,
                        row.id,
                    )
                )
            elif isinstance(decision, QuestCompleted):
                quest = {"player_id": pid, "quest_id": decision.quest_id, "name": decision.name,
                         "period": decision.period, "event_id": row.event.id}  # fmt: skip
                key = f"quest:{pid}:{decision.quest_id}:{decision.period}"
                notes.append(Outbound("quest.completed", quest, key))
                log.info(
                    "quest completed",
                    extra={
                        "tenant_id": tenant_id,
                        "player_id": pid,
                        "quest_id": decision.quest_id,
                        "period": decision.period,
                        "event_id": row.event.id,
                    },
                )
            elif isinstance(decision, StreakFreezeUsed | StreakMilestoneReached):
                log.info(
                    "streak freeze used"
                    if isinstance(decision, StreakFreezeUsed)
                    else "streak milestone",
                    extra={"tenant_id": tenant_id, "player_id": pid, "event_id": row.event.id},
                )
            elif isinstance(decision, LevelReached):
                log.info(
                    "level reached",
                    extra={
                        "tenant_id": tenant_id,
                        "player_id": pid,
                        "level": decision.level,
                        "event_id": row.event.id,
                    },
                )

    _save_freezes(session, tenant_id, before, states)
    gained = _insert_ledger(session, ledger)
    if badges:
        session.execute(upsert_ignore(session, PlayerBadge), badges)
    record_many(session, tenant_id, notes, now=now)
    # LMS groups named on events (context.group), for group boards (issue 4).
    join_groups(
        session, tenant_id, [(r.event.group, player_of[r.id]) for r in rows if r.event.group]
    )
    apply_credits(session, tenant_id, credits)
    course_totals = _add_course_xp(session, tenant_id, ledger, gained)

    updates = []
    for pid, state in states.items():
        xp = before[pid].xp + sum(gained.get(pid, {}).values())
        updates.append(
            {
                "id": pid,
                "xp": xp,
                "level": max(before[pid].level, rules.levels.level_for(xp)),
                "streak_current": state.streak.current,
                "streak_longest": state.streak.longest,
                "last_active_day": state.streak.last_day.isoformat()
                if state.streak.last_day
                else None,
                "timezone": zones.get(pid),
                "rule_state": state.counters.to_json(),
            }
        )
    _bulk_update_players(session, updates, rows, player_of)
    applied = [
        {
            "id": row.id,
            "status": "applied",
            "processed_at": now,
            "player_id": player_of[row.id],
            "last_error": None,
        }
        for row in rows
    ]
    if postgres:  # one statement instead of one UPDATE per row
        update_rows(session.connection(), InboxEvent.__table__, applied)
    else:
        session.execute(update(InboxEvent), applied)
    # Boards list players with XP, as reconcile rebuilds them from the ledger.
    boards: BoardWrites = {(tenant_id, "tenant"): {u["id"]: u["xp"] for u in updates if u["xp"]}}
    for (course, pid), xp in course_totals.items():
        boards.setdefault((tenant_id, course_board(course)), {})[pid] = xp
    return boards


class PlayerMerged(RuntimeError):
    """A player this batch resolved was merged into another before its row lock was granted.

    The rows fail this attempt and are retried with backoff; by then the actor's identity leads
    to the surviving player, so nothing is written to the merged-away one."""


def _refuse_merged(session: Session, tenant_id: int, player_ids: list[int], postgres: bool) -> None:
    """Checked after the player rows are locked: a merge that committed before our lock is
    visible now (READ COMMITTED), and one that starts later waits for our transaction."""
    if not player_ids:
        return
    merged = session.scalars(
        select(PlayerMerge.source_player_id).where(
            PlayerMerge.tenant_id == tenant_id,
            id_in(PlayerMerge.source_player_id, player_ids, postgres),
        )
    ).all()
    if merged:
        raise PlayerMerged(f"players {sorted(merged)} were merged into others; retrying")


def _insert_ledger(session: Session, ledger: list[dict[str, Any]]) -> dict[int, dict[str, int]]:
    """Insert ledger rows, skipping keys already present; {player: {key: amount}} inserted."""
    if not ledger:
        return {}
    if session.get_bind().dialect.name == "postgresql":  # one statement, one parameter
        conn = session.connection()
        returned = insert_ignore_returning(conn, XpLedger.__table__, ledger, ("idempotency_key",))
        inserted = {key for (key,) in returned}
    else:
        stmt = upsert_ignore(session, XpLedger).returning(XpLedger.idempotency_key)
        inserted = {key for (key,) in session.execute(stmt, ledger)}
    gained: dict[int, dict[str, int]] = defaultdict(dict)
    for entry in ledger:
        if entry["idempotency_key"] in inserted:
            gained[entry["player_id"]][entry["idempotency_key"]] = entry["amount"]
    return gained


def _add_course_xp(
    session: Session,
    tenant_id: int,
    ledger: list[dict[str, Any]],
    gained: dict[int, dict[str, int]],
) -> dict[tuple[str, int], int]:
    """Add newly gained XP to per-course totals; return the new absolute totals."""
    deltas: dict[tuple[str, int], int] = defaultdict(int)
    for entry in ledger:
        pid, key = entry["player_id"], entry["idempotency_key"]
        if entry["course"] is not None and key in gained.get(pid, {}):
            deltas[(entry["course"], pid)] += entry["amount"]
    if not deltas:
        return {}
    params = [
        {"tenant_id": tenant_id, "course": course, "player_id": pid, "xp": delta}
        for (course, pid), delta in sorted(deltas.items())
    ]
    if session.get_bind().dialect.name == "postgresql":  # one statement, one parameter
        returned = upsert_add_returning(
            session.connection(),
            PlayerCourseStats.__table__,
            params,
            conflict=("tenant_id", "course", "player_id"),
            add="xp",
            returning=("course", "player_id", "xp"),
        )
        return {(course, pid): xp for course, pid, xp in returned}
    from sqlalchemy.dialects.sqlite import insert

    stmt = insert(PlayerCourseStats)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "course", "player_id"],
        set_={"xp": PlayerCourseStats.xp + stmt.excluded.xp},
    ).returning(PlayerCourseStats.course, PlayerCourseStats.player_id, PlayerCourseStats.xp)
    return {(course, pid): xp for course, pid, xp in session.execute(stmt, params)}


def _bulk_update_players(
    session: Session, updates: list[dict[str, Any]], rows: list[Claimed], player_of: dict[int, int]
) -> None:
    """Every touched player in one UPDATE (PostgreSQL) or one executemany (SQLite)."""
    counts: dict[int, int] = defaultdict(int)
    for row in rows:
        counts[player_of[row.id]] += 1
    if session.get_bind().dialect.name == "postgresql":
        values = [{**u, "events_applied": counts[u["id"]]} for u in updates]
        increments = frozenset({"events_applied"})
        update_rows(session.connection(), Player.__table__, values, increments=increments)
        return
    stmt = (
        update(Player.__table__)
        .where(Player.__table__.c.id == bindparam("pid"))
        .values(
            xp=bindparam("xp"),
            level=bindparam("level"),
            streak_current=bindparam("streak_current"),
            streak_longest=bindparam("streak_longest"),
            last_active_day=bindparam("last_active_day"),
            timezone=bindparam("timezone"),
            rule_state=bindparam("rule_state", type_=Player.__table__.c.rule_state.type),
            events_applied=Player.__table__.c.events_applied + bindparam("n"),
        )
    )
    session.execute(stmt, [{**u, "pid": u["id"], "n": counts[u["id"]]} for u in updates])


def _record_failure(
    session: Session,
    row: Claimed,
    exc: Exception,
    now: datetime,
    max_attempts: int,
    base_seconds: int,
) -> bool:
    """Note a failed attempt; return True when the row is now dead (out of attempts)."""
    attempts = row.attempts + 1
    dead = attempts >= max_attempts
    session.execute(
        update(InboxEvent)
        .where(InboxEvent.id == row.id)
        .values(
            attempts=attempts,
            status="failed" if dead else "pending",
            next_attempt_at=None
            if dead
            else now + timedelta(seconds=base_seconds * 2 ** (attempts - 1)),
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
    )
    log.warning(
        "event failed",
        extra={
            "tenant_id": row.tenant_id,
            "event_id": row.event.id,
            "inbox_id": row.id,
            "attempt": attempts,
            "dead": dead,
            "error": f"{type(exc).__name__}: {exc}",
        },
    )
    return dead


def process_batch(
    db: Database,
    *,
    limit: int,
    max_attempts: int,
    retry_base_seconds: int,
    now: datetime | None = None,
) -> BatchResult:
    """Claim and apply one batch; returns what happened (boards still to write)."""
    now = now or utcnow()
    result = BatchResult()
    with db.session() as session:
        rows, unreadable = claim(session, limit, now, db.is_postgres)
        result.claimed = len(rows) + len(unreadable)
        for row, exc in unreadable:
            # A stored event that no longer parses will never succeed: dead at once.
            result.failed += 1
            result.dead += _record_failure(session, row, exc, now, 1, retry_base_seconds)
        if not rows:
            return result
        by_tenant: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            by_tenant[row.tenant_id].append(row)
        players = _resolve(db, session, by_tenant)
        for tenant_id, tenant_rows in by_tenant.items():
            try:
                with session.begin_nested():
                    result.boards.update(
                        apply_tenant_rows(
                            session, tenant_id, tenant_rows, players[tenant_id], now, db.is_postgres
                        )
                    )
                result.applied += len(tenant_rows)
                result.received.extend(r.received_at for r in tenant_rows)
                continue
            except Exception:
                log.info("batch failed, retrying row by row", exc_info=True)
            for row in tenant_rows:
                try:
                    with session.begin_nested():
                        writes = apply_tenant_rows(
                            session, tenant_id, [row], players[tenant_id], now, db.is_postgres
                        )
                    for key, scores in writes.items():
                        result.boards.setdefault(key, {}).update(scores)
                    result.applied += 1
                    result.received.append(row.received_at)
                except Exception as exc:
                    result.failed += 1
                    if _record_failure(session, row, exc, now, max_attempts, retry_base_seconds):
                        result.dead += 1
    return result


def _resolve(
    db: Database, session: Session, by_tenant: dict[int, list[Claimed]]
) -> dict[int, dict[tuple[str, str], int]]:
    """Players for every actor. On PostgreSQL new players are created in their own short
    transaction, so identity inserts never wait inside the long, row-locking one."""
    out: dict[int, dict[tuple[str, str], int]] = {}
    if db.is_postgres:
        with db.session() as side:
            for tenant_id, rows in sorted(by_tenant.items()):  # one lock order for all workers
                out[tenant_id] = resolve_players(side, tenant_id, [r.event.actor for r in rows])
    else:
        for tenant_id, rows in by_tenant.items():
            out[tenant_id] = resolve_players(session, tenant_id, [r.event.actor for r in rows])
    return out


def write_boards(boards: Leaderboards, writes: BoardWrites) -> bool:
    """Push absolute totals to Redis in one pipeline. A failure is logged loudly and counted;
    PostgreSQL already holds the truth, and ``questline reconcile`` repairs the boards."""
    if not writes:
        return True
    try:
        pipe = boards.client.pipeline(transaction=False)
        for (tenant_id, board), scores in writes.items():
            boards.record(pipe, tenant_id, board, scores)
        pipe.execute()
        return True
    except Exception:
        metrics.REDIS_WRITE_ERRORS.inc()
        log.error("leaderboard write failed; run `questline reconcile`", exc_info=True)
        return False


def observe(result: BatchResult, done_at: datetime) -> None:
    """Feed a batch's outcome into the metrics."""
    if result.applied:
        metrics.EVENTS_APPLIED.inc(result.applied)
    if result.failed:
        metrics.EVENTS_FAILED.labels(final="false").inc(result.failed - result.dead)
        metrics.EVENTS_FAILED.labels(final="true").inc(result.dead)
    for received in result.received:
        metrics.EVENT_LATENCY_SECONDS.observe(max(0.0, (done_at - received).total_seconds()))
