"""Rules engine benchmarks (run on demand; figures go into docs/performance.md).

``python bench/rules.py engine [--events N] [--shape dense|spread]``
    In-process evaluation: a 50-rule set (XP rules with conditions, formulas, caps, cooldowns and
    first-time-per-object, a multiplier, badges, a quest) over N synthetic events of 1,000
    players, one core, no I/O. Prints events per second.

``python bench/rules.py simulate --database URL [--events N] [--keep]``
    Stores N applied events for a fresh tenant (COPY, in chunks), then times
    ``questline.rules_replay.simulate`` (what ``questline rules simulate`` runs) over them and
    prints the wall time. The tenant is deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluate import PlayerState, evaluate
from engine.events import ActivityEvent, parse_event
from engine.rules import RuleSet, parse_rules

TYPES = [
    "lesson.completed",
    "quiz.submitted",
    "assignment.graded",
    "session.started",
    "video.watched",
    "forum.posted",
    "course.completed",
    "deal.won",
]


# The "spread" shape: the same 50 rules over 25 event types (2 rules per type), as a tenant
# with many kinds of activity would write them; events are drawn from those 25 types.
SPREAD_TYPES = [
    f"{verb}.{noun}"
    for verb in ("lesson", "quiz", "task", "forum", "video")
    for noun in ("started", "completed", "submitted", "graded", "viewed")
]


def fifty_rules(types: list[str] | None = None) -> dict[str, Any]:
    """A 50-rule document that uses every XP feature, plus badges and a quest. ``types`` are
    the event types the rules are spread over (default: the 8 of ``TYPES``, about 6 rules per
    event type: the dense shape)."""
    types = types or TYPES
    xp: list[dict[str, Any]] = []
    for i in range(50):
        kind = types[i % len(types)]
        rule: dict[str, Any] = {"id": f"r{i}", "on": kind, "points": 5 + i % 7}
        variant = i % 5
        if variant == 0:
            rule["when"] = {"score_at_least": 0.5}
            rule["points"] = "round(40 + 60 * score)"
        elif variant == 1:
            rule["cap"] = {"per_day": 100, "per_object": 40}
        elif variant == 2:
            rule["cooldown"] = "10m"
            rule["currency"] = 1
        elif variant == 3:
            rule["when"] = {"first_time_per_object": True, "course": [f"c{j}" for j in range(5)]}
        else:
            rule["when"] = {"object_type": ["quiz", "lesson"], "passed": True}
        xp.append(rule)
    return {
        "version": 2,
        "xp": xp,
        "multipliers": [
            {
                "id": "exam-week",
                "factor": 2,
                "from": "2026-11-10T00:00:00Z",
                "until": "2026-11-17T00:00:00Z",
            }
        ],
        "badges": [
            {"id": "b-count", "name": "Busy", "criteria": {"count": 50}},
            {
                "id": "b-tier",
                "name": "Quizzer",
                "scope": "course",
                "tiers": [
                    {
                        "name": "bronze",
                        "criteria": {"distinct_objects": 3, "of": {"on": "quiz.submitted"}},
                    },
                    {
                        "name": "silver",
                        "criteria": {"distinct_objects": 10, "of": {"on": "quiz.submitted"}},
                    },
                ],
            },
            {"id": "b-week", "name": "Sprinter", "criteria": {"count": 20, "within": "7d"}},
            {"id": "b-level", "name": "Climber", "criteria": {"level": 5}},
        ],
        "quests": [
            {
                "id": "daily",
                "name": "Daily three",
                "period": "daily",
                "objectives": [{"count": 3}],
                "reward": {"xp": 10},
            }
        ],
        "levels": {"formula": {"base": 100, "exponent": 1.5}},
    }


def synthetic(
    n: int, players: int = 1000, seed: int = 7, types: list[str] | None = None
) -> list[dict[str, Any]]:
    types = types or TYPES
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        kind = rng.choice(types)
        at = start + timedelta(seconds=i * 2_592_000 // max(n, 1))
        out.append(
            {
                "id": f"e{i}",
                "source": "api",
                "type": kind,
                "actor": {"id": f"p{rng.randrange(players)}"},
                "object": {"id": f"o{rng.randrange(200)}", "type": rng.choice(["quiz", "lesson"])},
                "context": {"course": f"c{rng.randrange(8)}"},
                "result": {"score": round(rng.random(), 2), "passed": rng.random() < 0.7},
                "occurred_at": at.isoformat(),
            }
        )
    return out


def calibrate() -> float:
    """CPU seconds for 3,000,000 iterations of a bare Python loop (about 0.12-0.15 s on an
    idle modern core): how slow this core is right now, to read the other figures against."""
    began = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i
    return time.process_time() - began


def bench_engine(n: int, shape: str = "dense") -> None:
    types = SPREAD_TYPES if shape == "spread" else TYPES
    print(f"calibration: a 3M-iteration loop took {calibrate():.2f} s of CPU")
    rules: RuleSet = parse_rules(fifty_rules(types))
    events: list[ActivityEvent] = [parse_event(e) for e in synthetic(n, types=types)]
    states: dict[str, PlayerState] = {}
    decisions = 0
    began, cpu = time.perf_counter(), time.process_time()
    for event in events:
        actor = event.actor.id or ""
        found, states[actor] = evaluate(event, states.get(actor, PlayerState()), rules, "UTC")
        decisions += len(found)
    took, cpu = time.perf_counter() - began, time.process_time() - cpu
    # CPU time is what one core spent on the work; on a shared machine the wall time also
    # counts the time other processes held the core. Both are printed.
    print(
        f"engine ({shape}, {len(types)} event types): {n} events, 50 XP rules + 4 badges + "
        f"1 quest, {len(states)} players: "
        f"wall {took:.2f} s = {n / took:,.0f} events/s; CPU {cpu:.2f} s = {n / cpu:,.0f} "
        f"events/s per core; {decisions} decisions"
    )


def bench_simulate(url: str, n: int, keep: bool) -> None:
    from sqlalchemy import delete

    from questline.db import Database
    from questline.models import Tenant
    from questline.rules_replay import simulate
    from questline.tenants import create_tenant
    from workers.rulesets import store_version

    database = Database(url)
    with database.session() as session:
        tenant, _key = create_tenant(session, f"bench-rules-{time.time_ns()}")
        tenant_id = tenant.id
        store_version(session, tenant_id, fifty_rules(), course=None, actor="bench")
    try:
        began = time.perf_counter()
        _store(database, tenant_id, n)
        print(f"stored {n} applied events in {time.perf_counter() - began:.1f} s")
        candidate = fifty_rules()
        candidate["xp"][0]["points"] = "round(80 * score)"
        candidate["badges"][0]["criteria"] = {"count": 40}
        began = time.perf_counter()
        with database.sessions() as session:
            report = simulate(session, tenant_id, candidate, course=None, since=None)
        took = time.perf_counter() - began
        print(
            f"simulate: {report.events} events, {report.players} players: {took:.1f} s "
            f"({report.events / took:,.0f} events/s); {len(report.changes)} players would change"
        )
    finally:
        if not keep:
            with database.session() as session:
                session.execute(delete(Tenant).where(Tenant.id == tenant_id))
        database.dispose()


def _store(database: Any, tenant_id: int, n: int, players: int = 1000) -> None:
    """Players, identities and applied inbox rows, written with COPY."""
    from sqlalchemy import select

    from questline.models import Player

    with database.session() as session:
        session.add_all(Player(tenant_id=tenant_id, display_name=f"p{i}") for i in range(players))
        session.flush()
        ids = list(
            session.scalars(
                select(Player.id).where(Player.tenant_id == tenant_id).order_by(Player.id)
            )
        )
    chunk = 50_000
    for start in range(0, n, chunk):
        rows = synthetic(min(chunk, n - start), players, seed=start)
        with database.session() as session:
            raw = session.connection().connection.driver_connection
            with (
                raw.cursor() as cur,
                cur.copy(
                    "COPY inbox_events (tenant_id, source, event_key, event_type, status,"
                    " canonical, raw, received_at, processed_at, player_id, occurred_at, attempts)"
                    " FROM STDIN"
                ) as copy,
            ):
                for i, row in enumerate(rows):
                    row["id"] = f"e{start + i}"
                    pid = ids[int(row["actor"]["id"][1:])]
                    at = row["occurred_at"]
                    copy.write_row(
                        (
                            tenant_id,
                            "api",
                            row["id"],
                            row["type"],
                            "applied",
                            json.dumps(row),
                            "",
                            at,
                            at,
                            pid,
                            at,
                            0,
                        )
                    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("what", choices=["engine", "simulate"])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--shape", choices=["dense", "spread"], default="dense")
    parser.add_argument("--database", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.what == "engine":
        bench_engine(args.events, args.shape)
    else:
        if not args.database:
            parser.error("simulate needs --database URL")
        bench_simulate(args.database, args.events, args.keep)


if __name__ == "__main__":
    main()
