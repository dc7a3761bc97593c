"""Replaying stored history through rules: ``rules simulate`` (what would change, writes nothing)
and ``rules load --retro`` (apply new rules to history, idempotently, audit-logged).

Both run the live engine (``engine.evaluate``) over the tenant's applied inbox events in event
time order, from a fresh player state, so a replay is the same code as live processing.

``simulate`` replays the chosen window twice in one pass, under the active rules and under the
candidate, and compares the two: XP per player, badges granted or no longer earned, levels.
Comparing two replays (rather than a replay with the ledger) keeps the comparison fair when the
window starts mid-history: caps, first-time rules and badge tallies start empty on both sides.

``retro_apply`` replays the whole history under the active rules and makes the books agree:
for each (event, rule) it appends the difference between the replayed XP and what the ledger
holds for that pair (original rows plus earlier adjustments), so a second run appends nothing.
Badges the replay earns and the player never held are awarded; badges in force that rules
earned from events and the replay no longer earns are revoked with a reason (and restored by a
later retro that earns them again). Rule coins are credited or clawed back per award through
the append-only currency ledger, never below zero: coins already spent are forgiven, and the
award counts as settled (docs/rules.md). Streaks and inventory are not recomputed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from engine.decisions import BadgeAwarded, CurrencyAwarded, XpAwarded
from engine.evaluate import WorkingState, evaluate_into
from engine.events import ActivityEvent, Actor, InvalidEvent, Result, read_stored
from engine.rules import RuleBook, parse_rules
from engine.state import PlayerState
from questline.currency import Credit, apply_credits, balances
from questline.ingest import upsert_ignore
from questline.models import (
    InboxEvent,
    Player,
    PlayerBadge,
    PlayerCourseStats,
    RuleAudit,
    Tenant,
    XpLedger,
)
from questline.rules_models import CurrencyBalance, CurrencyLedger
from workers.rulesets import active_rule_book

Progress = Callable[[int], None]


def _decode(canonical: Any) -> ActivityEvent | None:
    """A stored canonical event; None when it cannot be read (it was applied once, so it parsed
    then; a rule change cannot fix it now)."""
    try:
        return read_stored(canonical)
    except InvalidEvent:
        return None


STREAM_ROWS = 20_000  # rows per round trip of the server-side cursor


def _history(
    session: Session,
    tenant_id: int,
    *,
    since: datetime | None,
    course: str | None,
    players: list[int] | None = None,
) -> Iterator[tuple[int, int, ActivityEvent]]:
    """(inbox id, player id, event) of applied events in event-time order, streamed.

    On PostgreSQL the rows come from a server-side cursor, STREAM_ROWS at a time, straight
    from psycopg (no ORM rows): a replay of a million events holds one chunk in memory."""
    if session.get_bind().dialect.name == "postgresql":
        stream = _stream_postgres(session, tenant_id, since=since, course=course, players=players)
        for inbox_id, player_id, event in stream:
            if event is not None and (course is None or event.course == course):
                yield inbox_id, player_id, event
        return
    stmt = (
        select(InboxEvent.id, InboxEvent.player_id, InboxEvent.canonical)
        .where(
            InboxEvent.tenant_id == tenant_id,
            InboxEvent.status == "applied",
            InboxEvent.player_id.is_not(None),
        )
        .order_by(InboxEvent.occurred_at, InboxEvent.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    if since is not None:
        stmt = stmt.where(InboxEvent.occurred_at >= since)
    if players is not None:
        stmt = stmt.where(InboxEvent.player_id.in_(players))
    for inbox_id, player_id, canonical in session.execute(stmt).tuples():
        decoded = _decode(canonical)
        if decoded is None or (course is not None and decoded.course != course):
            continue
        yield inbox_id, player_id, decoded


# The fields of a stored canonical event, taken apart by PostgreSQL (the server's core does the
# JSON work, in parallel with the replay; psycopg hands back plain text and numbers).
FIELDS_SQL = """
SELECT id, player_id,
       canonical ->> 'id', canonical ->> 'source', canonical ->> 'type',
       canonical #>> '{actor,id}', canonical #>> '{actor,email}',
       canonical #>> '{actor,name}', canonical #>> '{actor,timezone}',
       canonical ->> 'occurred_at',
       canonical #>> '{object,id}', canonical #>> '{object,type}',
       canonical #>> '{context,course}',
       (canonical #>> '{result,score}')::float8,
       (canonical #>> '{result,passed}')::boolean,
       (canonical #>> '{result,duration}')::float8,
       canonical -> 'extensions'
FROM inbox_events
WHERE tenant_id = %(tenant)s AND status = 'applied' AND player_id IS NOT NULL
"""


def _stream_postgres(
    session: Session,
    tenant_id: int,
    *,
    since: datetime | None,
    course: str | None,
    players: list[int] | None,
) -> Iterator[tuple[int, int, ActivityEvent | None]]:
    """The history from a server-side cursor, STREAM_ROWS at a time, decoded from columns
    (no ORM rows, no JSON parsing in Python): a million events hold one chunk in memory."""
    sql = [FIELDS_SQL]
    params: dict[str, Any] = {"tenant": tenant_id}
    if since is not None:
        sql.append("AND occurred_at >= %(since)s")
        params["since"] = since
    if course is not None:  # the course is checked again on the decoded event
        sql.append("AND canonical -> 'context' ->> 'course' = %(course)s")
        params["course"] = course
    if players is not None:
        sql.append("AND player_id = ANY(%(players)s)")
        params["players"] = players
    sql.append("ORDER BY occurred_at, id")
    raw = session.connection().connection.driver_connection
    assert raw is not None
    no_actor, no_result = Actor(), Result()
    parse_time = datetime.fromisoformat
    with raw.cursor(name=f"questline_replay_{tenant_id}") as cursor:
        cursor.itersize = STREAM_ROWS
        cursor.execute(" ".join(sql), params)
        for row in cursor:
            (inbox_id, player_id, eid, source, kind, aid, email, name, zone, at) = row[:10]
            (obj, obj_type, in_course, score, passed, duration, extensions) = row[10:]
            try:
                moment = parse_time(at)
            except (TypeError, ValueError):
                moment = None
            if eid is None or kind is None or moment is None or moment.tzinfo is None:
                yield inbox_id, player_id, None  # not a canonical event: skipped, as _decode
                continue
            actor = (
                Actor(aid, email, name, zone)
                if aid is not None or email is not None or name is not None or zone is not None
                else no_actor
            )
            result = (
                Result(score, passed, duration)
                if score is not None or passed is not None or duration is not None
                else no_result
            )
            event = ActivityEvent(
                eid,
                source or "api",
                kind,
                actor,
                moment,
                obj,
                obj_type,
                in_course,
                result,
                extensions or {},
            )
            yield inbox_id, player_id, event


def count_history(
    session: Session, tenant_id: int, *, since: datetime | None, course: str | None
) -> int:
    stmt = select(func.count()).where(
        InboxEvent.tenant_id == tenant_id,
        InboxEvent.status == "applied",
        InboxEvent.player_id.is_not(None),
    )
    if since is not None:
        stmt = stmt.where(InboxEvent.occurred_at >= since)
    return int(session.scalar(stmt) or 0)


def _zones(session: Session, tenant_id: int) -> tuple[dict[int, str | None], str]:
    tenant_zone = session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"
    rows = session.execute(
        select(Player.id, Player.timezone).where(Player.tenant_id == tenant_id)
    ).all()
    return {pid: zone for pid, zone in rows}, tenant_zone


@dataclass
class _Run:
    """One replay's outcome per player."""

    rules: RuleBook
    # One working state per player, updated in place (engine/state.py): a replay owns them.
    working: dict[int, WorkingState] = field(default_factory=dict)
    # (inbox id, rule) -> XP; kept by retro runs only (keep_rows)
    xp: dict[tuple[int, str], int] = field(default_factory=dict)
    xp_rows: dict[tuple[int, str], tuple[int, XpAwarded, ActivityEvent]] = field(
        default_factory=dict
    )
    badges: dict[int, dict[tuple[str, str, int], tuple[int, BadgeAwarded]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    credits: list[Credit] = field(default_factory=list)
    keep_rows: bool = False

    @property
    def states(self) -> dict[int, PlayerState]:
        """The players' states at the end of the replay."""
        return {pid: working.freeze() for pid, working in self.working.items()}

    def step(self, inbox_id: int, pid: int, event: ActivityEvent, zone: str) -> None:
        working = self.working.get(pid)
        if working is None:
            working = self.working[pid] = WorkingState()
        keep = self.keep_rows
        # Only a retro run writes rows, so only it needs the explanations and the XP per
        # (event, rule); a simulation compares the final states and the badges.
        for d in evaluate_into(event, working, self.rules, zone, explain=keep):
            if isinstance(d, XpAwarded):
                if keep:
                    self.xp[(inbox_id, d.rule_id)] = d.amount
                    self.xp_rows[(inbox_id, d.rule_id)] = (pid, d, event)
            elif isinstance(d, BadgeAwarded):
                self.badges[pid].setdefault((d.badge_id, d.course or "*", d.tier), (inbox_id, d))
            elif isinstance(d, CurrencyAwarded) and self.keep_rows:
                self.credits.append(
                    Credit(
                        pid, d.idempotency_key, "rule", d.rule_id, d.amount, d.explanation, inbox_id
                    )
                )


def _replay(
    session: Session,
    tenant_id: int,
    runs: list[_Run],
    *,
    since: datetime | None,
    course: str | None,
    players: list[int] | None = None,
    progress: Progress | None = None,
) -> tuple[int, dict[int, int]]:
    """Feed the history to every run; returns (events, player -> inbox ids seen per player)."""
    zones, tenant_zone = _zones(session, tenant_id)
    current: dict[int, str | None] = {}
    count = 0
    seen: dict[int, int] = defaultdict(int)
    for inbox_id, pid, event in _history(
        session, tenant_id, since=since, course=course, players=players
    ):
        if event.actor.timezone:
            current[pid] = event.actor.timezone
        zone = current.get(pid) or zones.get(pid) or tenant_zone
        for run in runs:
            run.step(inbox_id, pid, event, zone)
        count += 1
        seen[pid] += 1
        if progress is not None and count % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(count % 1000)
    return count, seen


# --- simulate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayerChange:
    player_id: int
    name: str
    xp_before: int
    xp_after: int
    level_before: int
    level_after: int
    granted: tuple[str, ...]
    revoked: tuple[str, ...]


@dataclass(frozen=True)
class SimulationReport:
    events: int
    players: int
    changes: list[PlayerChange]

    def lines(self) -> list[str]:
        out = []
        for c in self.changes:
            parts = []
            if c.xp_after != c.xp_before:
                parts.append(f"XP {c.xp_before} -> {c.xp_after} ({c.xp_after - c.xp_before:+d})")
            if c.level_after != c.level_before:
                parts.append(f"level {c.level_before} -> {c.level_after}")
            if c.granted:
                parts.append("badges granted: " + ", ".join(c.granted))
            if c.revoked:
                parts.append("badges no longer earned: " + ", ".join(c.revoked))
            out.append(f"player {c.player_id} ({c.name}): " + "; ".join(parts))
        xp = sum(c.xp_after - c.xp_before for c in self.changes)
        out.append(
            f"{self.events} events of {self.players} players replayed; {len(self.changes)} "
            f"players would change; XP {xp:+d} in total; "
            f"{sum(len(c.granted) for c in self.changes)} badges granted, "
            f"{sum(len(c.revoked) for c in self.changes)} no longer earned, "
            f"{sum(c.level_after != c.level_before for c in self.changes)} level changes"
        )
        return out


def candidate_book(current: RuleBook, document: Any, course: str | None) -> RuleBook:
    """The active rule book with ``document`` in place of the tenant's (or one course's) set.
    Raises ``InvalidRules``."""
    parsed = parse_rules(document, scope="course" if course else "tenant")
    if course is None:
        return RuleBook(parsed, dict(current.courses))
    return RuleBook(current.tenant, {**current.courses, course: parsed})


def _label(key: tuple[str, str, int], award: BadgeAwarded) -> str:
    badge_id, scope, _tier = key
    where = f" in {scope}" if scope != "*" else ""
    return f"{badge_id} ({award.tier_name}){where}"


def simulate(
    session: Session,
    tenant_id: int,
    document: Any,
    *,
    course: str | None,
    since: datetime | None,
    progress: Progress | None = None,
) -> SimulationReport:
    """Replay the window under the active rules and under ``document``; compare. Reads only."""
    active = active_rule_book(session, tenant_id)
    before, after = _Run(active), _Run(candidate_book(active, document, course))
    events, seen = _replay(
        session, tenant_id, [before, after], since=since, course=course, progress=progress
    )
    names = dict(
        session.execute(
            select(Player.id, Player.display_name).where(Player.id.in_(list(seen)))
        ).all()
    )
    changes = []
    for pid in sorted(seen):
        b, a = before.working[pid], after.working[pid]
        old_badges, new_badges = before.badges.get(pid, {}), after.badges.get(pid, {})
        granted = tuple(_label(k, v[1]) for k, v in new_badges.items() if k not in old_badges)
        revoked = tuple(_label(k, v[1]) for k, v in old_badges.items() if k not in new_badges)
        if (b.xp, b.level) != (a.xp, a.level) or granted or revoked:
            changes.append(
                PlayerChange(
                    pid, names.get(pid, "?"), b.xp, a.xp, b.level, a.level, granted, revoked
                )
            )
    return SimulationReport(events, len(seen), changes)


# --- retro -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetroReport:
    events: int
    players: int
    xp_rows: int
    xp_delta: int
    badges: int  # awarded
    credits: int  # coin credits (new rule credits and top-ups)
    badges_revoked: int = 0
    clawbacks: int = 0  # clawback rows written
    coins_taken: int = 0
    coins_forgiven: int = 0  # owed but already spent: not taken (see _retro_coins)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def retro_apply(
    session: Session,
    tenant_id: int,
    *,
    version: int,
    course: str | None,
    actor: str,
    progress: Progress | None = None,
) -> RetroReport:
    """Make the ledger agree with a replay of all history under the active rules (see the
    module doc). Locks every player of the tenant (id order, as the worker does) for the whole
    run, so live processing waits rather than interleaving; runs in the caller's transaction."""
    rules = active_rule_book(session, tenant_id)
    lock = select(Player.id).where(Player.tenant_id == tenant_id).order_by(Player.id)
    if session.get_bind().dialect.name == "postgresql":
        lock = lock.with_for_update()
    players = list(session.scalars(lock))
    run = _Run(rules, keep_rows=True)
    events, _seen = _replay(
        session, tenant_id, [run], since=None, course=None, players=players, progress=progress
    )

    held: dict[tuple[int, int, str], int] = defaultdict(int)  # (inbox, player, rule) -> XP
    counts: dict[tuple[int, str], int] = defaultdict(int)
    for inbox_id, pid, rule_id, amount in session.execute(
        select(
            XpLedger.inbox_event_id, XpLedger.player_id, XpLedger.rule_id, XpLedger.amount
        ).where(XpLedger.tenant_id == tenant_id, XpLedger.inbox_event_id.is_not(None))
    ):
        assert inbox_id is not None  # filtered above
        held[(inbox_id, pid, rule_id)] += amount
        counts[(inbox_id, rule_id)] += 1
    owner = {(i, r): p for (i, p, r) in held}
    rows: list[dict[str, Any]] = []
    for key in sorted(set(run.xp) | set(owner)):
        inbox_id, rule_id = key
        target = run.xp.get(key, 0)
        pid = run.xp_rows[key][0] if key in run.xp_rows else owner[key]
        have = held.get((inbox_id, pid, rule_id), 0)
        if target == have:
            continue
        found = run.xp_rows.get(key)
        event = found[2] if found else None
        why = found[1].explanation if found else f"rule `{rule_id}` no longer awards this event"
        rows.append(
            {
                "tenant_id": tenant_id,
                "player_id": pid,
                "idempotency_key": f"retro|{inbox_id}|{rule_id}|{counts[key]}",
                "inbox_event_id": inbox_id,
                "rule_id": rule_id,
                "amount": target - have,
                "course": event.course if event else _course_of(session, tenant_id, key),
                "explanation": (
                    f"re-scored by rules v{version}: {have} -> {target} XP ({target - have:+d}); "
                    f"{why}"
                ),
                "occurred_at": event.occurred_at if event else _when_of(session, inbox_id),
            }
        )
    if rows:
        session.execute(upsert_ignore(session, XpLedger), rows)
    deltas: dict[int, int] = defaultdict(int)
    course_deltas: dict[tuple[str, int], int] = defaultdict(int)
    for row in rows:
        deltas[row["player_id"]] += row["amount"]
        if row["course"] is not None:
            course_deltas[(row["course"], row["player_id"])] += row["amount"]
    _apply_totals(session, tenant_id, rules, deltas, course_deltas, run)
    badges = _retro_badges(session, tenant_id, run)
    revoked = _retro_revoke(session, tenant_id, run, version=version, actor=actor)
    coins = _retro_coins(session, tenant_id, run, version=version)
    report = RetroReport(
        events,
        len(players),
        len(rows),
        sum(deltas.values()),
        badges,
        coins.credits,
        revoked,
        coins.clawbacks,
        coins.taken,
        coins.forgiven,
    )
    session.add(
        RuleAudit(
            tenant_id=tenant_id,
            course=course,
            version=version,
            action="retro",
            actor=actor,
            detail=report.as_dict(),
        )
    )
    session.flush()
    return report


def _course_of(session: Session, tenant_id: int, key: tuple[int, str]) -> str | None:
    return session.scalar(
        select(XpLedger.course)
        .where(
            XpLedger.tenant_id == tenant_id,
            XpLedger.inbox_event_id == key[0],
            XpLedger.rule_id == key[1],
        )
        .limit(1)
    )


def _when_of(session: Session, inbox_id: int) -> datetime:
    found = session.scalar(select(InboxEvent.occurred_at).where(InboxEvent.id == inbox_id))
    assert found is not None
    return found


def _apply_totals(
    session: Session,
    tenant_id: int,
    rules: RuleBook,
    deltas: dict[int, int],
    course_deltas: dict[tuple[str, int], int],
    run: _Run,
) -> None:
    """Player XP, level and rule counters; course totals."""
    current = dict(
        session.execute(select(Player.id, Player.xp).where(Player.tenant_id == tenant_id)).all()
    )
    for pid, xp in current.items():
        new_xp = xp + deltas.get(pid, 0)
        values: dict[str, Any] = {"xp": new_xp, "level": rules.levels.level_for(new_xp)}
        working = run.working.get(pid)
        state = working.freeze() if working is not None else None
        if state is not None:
            values["rule_state"] = state.counters.to_json()
        if deltas.get(pid) or state is not None:
            session.execute(update(Player).where(Player.id == pid).values(**values))
    for (course, pid), delta in sorted(course_deltas.items()):
        stats = session.get(PlayerCourseStats, (tenant_id, course, pid))
        if stats is None:
            session.add(
                PlayerCourseStats(tenant_id=tenant_id, course=course, player_id=pid, xp=delta)
            )
        else:
            stats.xp = stats.xp + delta


def _retro_badges(session: Session, tenant_id: int, run: _Run) -> int:
    """Award the replay's badges (badge, scope, tier) the player never held (revoked counts
    as held); returns how many."""
    owned = {
        (pid, badge_id, scope, tier)
        for pid, badge_id, scope, tier in session.execute(
            select(
                PlayerBadge.player_id, PlayerBadge.badge_id, PlayerBadge.scope, PlayerBadge.tier
            ).where(PlayerBadge.tenant_id == tenant_id)
        )
    }
    rows = []
    for pid, awards in run.badges.items():
        for (badge_id, scope, tier), (inbox_id, d) in awards.items():
            if (pid, badge_id, scope, tier) in owned:
                continue
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "player_id": pid,
                    "idempotency_key": d.idempotency_key,
                    "badge_id": badge_id,
                    "name": d.name,
                    "tier": tier,
                    "tier_name": d.tier_name,
                    "scope": scope,
                    "explanation": f"retroactive: {d.explanation}",
                    "inbox_event_id": inbox_id,
                    "awarded_at": d.awarded_at,
                    "expires_at": d.expires_at,
                }
            )
    if rows:
        session.execute(upsert_ignore(session, PlayerBadge), rows)
    return len(rows)


def _retro_revoke(session: Session, tenant_id: int, run: _Run, *, version: int, actor: str) -> int:
    """Revoke the badges in force that rules earned from events and the replay no longer earns
    (badge, scope, tier), each with its reason; returns how many. Quest rewards (no event) and
    admin revocations are left alone; expired awards are no longer in force, so left too.
    Like an admin's revocation, the award then counts as held: live processing does not
    simply award it again, while a later ``--retro`` whose replay earns it restores it."""
    now = datetime.now(UTC)
    rows = session.execute(
        select(
            PlayerBadge.id,
            PlayerBadge.player_id,
            PlayerBadge.badge_id,
            PlayerBadge.scope,
            PlayerBadge.tier,
            PlayerBadge.tier_name,
            PlayerBadge.revoked_at,
            PlayerBadge.revoked_by,
            PlayerBadge.expires_at,
        ).where(PlayerBadge.tenant_id == tenant_id, PlayerBadge.inbox_event_id.is_not(None))
    ).all()
    revoke: list[dict[str, Any]] = []
    restore: list[int] = []
    for award_id, pid, badge_id, scope, tier, tier_name, revoked_at, by, expires in rows:
        earned = (badge_id, scope, tier) in run.badges.get(pid, {})
        if revoked_at is not None:
            if earned and by == RETRO_REVOKER:
                restore.append(award_id)  # a retro run took it; this one's rules give it back
            continue
        if earned or (expires is not None and _aware(expires) <= now):
            continue
        where = f" in course {scope}" if scope != "*" else ""
        revoke.append(
            {
                "award_id": award_id,
                "revoked_at": now,
                "revoked_by": RETRO_REVOKER,
                "revoked_reason": (
                    f"retroactive: badge `{badge_id}` ({tier_name}){where} is not earned when "
                    f"the history is replayed under rules v{version} (by {actor})"
                ),
            }
        )
    if revoke:
        table = PlayerBadge.__table__
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("award_id"))
            .values(
                revoked_at=bindparam("revoked_at"),
                revoked_by=bindparam("revoked_by"),
                revoked_reason=bindparam("revoked_reason"),
            ),
            revoke,
        )
    if restore:
        session.execute(
            update(PlayerBadge)
            .where(PlayerBadge.id.in_(restore))
            .values(revoked_at=None, revoked_by=None, revoked_reason=None)
            .execution_options(synchronize_session=False)
        )
    return len(revoke)


RETRO_REVOKER = "retro"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _CoinOutcome:
    credits: int
    clawbacks: int
    taken: int
    forgiven: int


def _retro_coins(session: Session, tenant_id: int, run: _Run, *, version: int) -> _CoinOutcome:
    """Make the rule coins agree with the replay, per award key K (``source|event|rule``).

    What the ledger holds for K is its original credit, or, once K was adjusted, the target
    of its latest adjustment (written in the adjustment's key, ``...|to:<coins>``). A replay
    that earns more appends a credit ``retro-coins|K|n|to:t``; one that earns less appends a
    clawback ``clawback|K|n|to:t`` (kind ``clawback``, a negative amount, its balance_after).
    The balance never goes below zero: when the coins were spent, the clawback takes what is
    left and the rest is forgiven (its explanation says how much); the key still records the
    new target, so a second run changes nothing and never chases the spent coins later."""
    earned: dict[str, Credit] = {c.idempotency_key: c for c in run.credits}
    held: dict[str, tuple[int, int]] = {}  # K -> (player, coins the ledger holds for K)
    adjustments: dict[str, int] = defaultdict(int)  # K -> adjustment rows so far
    rows = session.execute(
        select(
            CurrencyLedger.idempotency_key,
            CurrencyLedger.player_id,
            CurrencyLedger.kind,
            CurrencyLedger.amount,
        )
        .where(
            CurrencyLedger.tenant_id == tenant_id,
            CurrencyLedger.kind.in_(("rule", "clawback")),
        )
        .order_by(CurrencyLedger.id)
    ).all()
    for key, pid, kind, amount in rows:
        if key.startswith(ADJUSTMENT_PREFIXES):
            base, _n, target = key.split("|", 1)[1].rsplit("|", 2)
            held[base] = (pid, int(target.removeprefix("to:")))
            adjustments[base] += 1
        elif kind == "rule":
            held[key] = (pid, amount)
    credits: list[Credit] = []
    takes: list[tuple[int, str, str, int, str]] = []  # player, K, rule, owed, key
    for key in sorted(set(earned) | set(held)):
        credit = earned.get(key)
        target = credit.amount if credit is not None else 0
        if key not in held:
            if credit is not None:
                credits.append(credit)  # never paid: the original key, as live processing
            continue
        pid, have = held[key]
        if target == have:
            continue
        rule = key.rsplit("|", 1)[1]
        n = adjustments[key]
        if target > have:
            credits.append(
                Credit(
                    pid,
                    f"retro-coins|{key}|{n}|to:{target}",
                    "rule",
                    rule,
                    target - have,
                    f"re-scored by rules v{version}: {have} -> {target} coins "
                    f"(+{target - have}); {credit.explanation if credit else ''}",
                    credit.inbox_event_id if credit else None,
                )
            )
        else:
            takes.append((pid, key, rule, have - target, f"clawback|{key}|{n}|to:{target}"))
    paid = apply_credits(session, tenant_id, credits)
    taken = forgiven = 0
    if takes:
        balance = balances(session, {pid for pid, *_rest in takes})
        entries = []
        for pid, key, rule, owed, row_key in takes:
            have_now = balance.get(pid, 0)
            take = min(owed, have_now)
            balance[pid] = have_now - take
            spent = owed - take
            taken += take
            forgiven += spent
            note = f"; {spent} already spent, forgiven" if spent else ""
            entries.append(
                {
                    "tenant_id": tenant_id,
                    "player_id": pid,
                    "idempotency_key": row_key,
                    "kind": "clawback",
                    "ref": rule,
                    "amount": -take,
                    "balance_after": balance[pid],
                    "explanation": (
                        f"taken back by rules v{version}: rule `{rule}` no longer pays "
                        f"{owed} of these coins (award {key}); took {take}{note}"
                    ),
                    "inbox_event_id": None,
                }
            )
        session.connection().execute(insert(CurrencyLedger.__table__), entries)
        for pid in sorted({e["player_id"] for e in entries}):
            session.execute(
                update(CurrencyBalance)
                .where(CurrencyBalance.player_id == pid)
                .values(balance=balance[pid])
            )
    return _CoinOutcome(paid, len(takes), taken, forgiven)


ADJUSTMENT_PREFIXES = ("retro-coins|", "clawback|")
