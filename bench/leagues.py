"""Benchmark of weekly leagues at scale: cohort joins/s, standings read p99, week rollover.

Run on demand, never from the test suite::

    .venv/bin/python bench/leagues.py                     # 1,000,000 players
    .venv/bin/python bench/leagues.py --players 100000    # a quicker run

It drops and recreates its own PostgreSQL database (``questline_bench_leagues``), migrates it,
and uses its own Redis key prefix (``qlbenchlg``, database 13), deleting only those keys.

What each figure measures, and why this way:

* **Joins/s**: every player earned XP this week (ledger rows loaded with COPY) and holds a
  tier spread over the ten default tiers; the real ``league_repo.join`` places them in
  batches of 500 (one worker batch), each in its own transaction with the league advisory lock,
  from ``--threads`` threads at once (two workers on two cores by default).
* **Standings read p50/p99**: ``GET /api/v1/leagues/standings?player=`` through the real Flask
  app for ``--reads`` random players, twice: a cold pass (each cohort's first read fills the
  Redis cache from PostgreSQL) and a warm pass (the widget's usual read: one Redis round trip,
  no SQL). Besides wall-clock percentiles, which a loaded shared machine inflates, it prints the
  CPU spent per read: this process (Flask test client + app), the PostgreSQL backends (from
  ``/proc/<pid>/stat``, the server is local) and the Redis server (``INFO cpu``).
* **Rollover**: ``close_due_weeks`` on the ended week, each step timed: open -> promoted (late
  joins, every cohort ranked in SQL, one UPDATE for the moves) and promoted -> closed (results,
  one ``league.finished`` inbox event per member, outbox rows for subscriptions), with the
  PostgreSQL backend CPU of each.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import redis
from sqlalchemy import text

# Run as ``python bench/leagues.py``, this folder comes first on sys.path and its bench modules
# (``bench/webhooks.py``) would shadow the project's packages of the same name.
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "questline_bench_leagues"
URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/13"
PREFIX = "qlbenchlg"
# The bench league plays the current week (UTC tenant), so the API reads it as "now".
WEEK_AT = datetime.now(UTC)


def reset() -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    from questline.migrate import upgrade

    upgrade(URL)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{PREFIX}*", count=5000))
    for i in range(0, len(keys), 5000):
        client.delete(*keys[i : i + 5000])


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: io.StringIO) -> None:
    rows.seek(0)
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        while chunk := rows.read(1 << 20):
            copy.write(chunk)


def seed(players: int) -> tuple[int, int, list[int]]:
    """A tenant, its default league, ``players`` players with XP this week and a tier each."""
    from engine.leagues import week_window

    with psycopg.connect(URL) as conn:
        tenant_id = conn.execute(
            "INSERT INTO tenants (name, timezone) VALUES ('bench', 'UTC') RETURNING id"
        ).fetchone()[0]
        league_id = conn.execute(
            "INSERT INTO leagues (tenant_id, scope, enabled, tiers, cohort_size, promote, demote)"
            " VALUES (%s, 'tenant', true, %s, 30, %s, %s) RETURNING id",
            (
                tenant_id,
                '["Bronze","Silver","Gold","Sapphire","Ruby","Emerald","Amethyst","Pearl",'
                '"Obsidian","Diamond"]',
                "[7,7,7,7,7,7,7,7,7,7]",
                "[5,5,5,5,5,5,5,5,5,5]",
            ),
        ).fetchone()[0]
        buf = io.StringIO()
        for i in range(players):
            buf.write(f"{tenant_id}\tp{i}\t{i}\n")
        _copy(conn, "players", "tenant_id, display_name, xp", buf)
        ids = [r[0] for r in conn.execute("SELECT id FROM players ORDER BY id")]
        # An actor id each, as players made by events have: the close's league.finished events
        # are addressed to it.
        idents = io.StringIO()
        for pid in ids:
            idents.write(f"{tenant_id}\t{pid}\tactor\tlearner-{pid}\n")
        _copy(conn, "player_identities", "tenant_id, player_id, kind, value", idents)
        rng = random.Random(4)
        ledger, tiers = io.StringIO(), io.StringIO()
        start = week_window(WEEK_AT, "UTC").start
        span = max(int((WEEK_AT - start).total_seconds()), 1)
        for pid in ids:
            at = (start + timedelta(seconds=rng.randrange(span))).isoformat()
            xp = rng.randrange(1, 500)
            ledger.write(f"{tenant_id}\t{pid}\tbench-{pid}\tbench\t{xp}\tbench\t{at}\t{at}\n")
            tiers.write(f"{league_id}\t{pid}\t{tenant_id}\t{rng.randrange(10)}\n")
        _copy(
            conn,
            "xp_ledger",
            "tenant_id, player_id, idempotency_key, rule_id, amount, explanation,"
            " occurred_at, created_at",
            ledger,
        )
        _copy(conn, "league_players", "league_id, player_id, tenant_id, tier", tiers)
        conn.execute("ANALYZE")
        conn.commit()
    return tenant_id, league_id, ids


def backend_cpu(pids: set[int]) -> float:
    """CPU seconds (user + system) the given local PostgreSQL backends have used so far."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def track_backends(db) -> set[int]:
    """The pids of the backends the pool hands out, as they are checked out."""
    from sqlalchemy import event

    pids: set[int] = set()

    @event.listens_for(db.engine, "checkout")
    def seen(dbapi, record, proxy) -> None:
        pids.add(dbapi.info.backend_pid)

    return pids


def bench_joins(db, league_id: int, ids: list[int], threads: int) -> float:
    from engine.leagues import week_window
    from questline.league_models import League
    from questline.league_repo import join

    week = week_window(WEEK_AT, "UTC")
    with db.sessions() as session:
        league = session.get(League, league_id)
        session.expunge(league)
    shuffled = ids[:]
    random.Random(5).shuffle(shuffled)
    batches = [shuffled[i : i + 500] for i in range(0, len(shuffled), 500)]
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not batches:
                    return
                batch = batches.pop()
            with db.session() as session:
                join(session, league, week, batch, True)

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started


def bench_joins_and_report(
    db, pids: set[int], league_id: int, ids: list[int], threads: int
) -> None:
    pg0, cpu0 = backend_cpu(pids), time.process_time()
    elapsed = bench_joins(db, league_id, ids, threads)
    join_cpu = (time.process_time() - cpu0, backend_cpu(pids) - pg0)
    with db.sessions() as session:
        cohorts, full, members = session.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE size = 30), sum(size)"
                " FROM league_cohorts WHERE league_id = :l"
            ),
            {"l": league_id},
        ).one()
    print(
        f"joins: {len(ids):,} in {elapsed:.1f}s = {len(ids) / elapsed:,.0f}/s "
        f"({threads} threads); {cohorts:,} cohorts, {full:,} full, {members:,} seats;"
        f" CPU per 1,000 joins: bench process {join_cpu[0] * 1000 / len(ids) * 1000:.0f} ms,"
        f" PostgreSQL {join_cpu[1] * 1000 / len(ids) * 1000:.0f} ms"
    )


def reopen(db) -> tuple[int, int, list[int]]:
    """``--reuse``: the last run's database, its week set back to open (tiers, results, events
    and messages of a previous close removed) so the reads and the rollover run again."""
    with db.session() as session:
        tenant_id, league_id = session.execute(text("SELECT tenant_id, id FROM leagues")).one()
        session.execute(text("UPDATE league_weeks SET status = 'open', closed_at = NULL"))
        session.execute(
            text("UPDATE league_players SET tier_week = NULL WHERE tier_week IS NOT NULL")
        )
        session.execute(text("DELETE FROM league_results"))
        session.execute(text("DELETE FROM inbox_events WHERE source = 'league'"))
        session.execute(text("DELETE FROM webhook_outbox"))
        ids = [int(r[0]) for r in session.execute(text("SELECT player_id FROM league_memberships"))]
    return int(tenant_id), int(league_id), ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--players", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument(
        "--reuse", action="store_true", help="skip seeding and joins: rerun reads and rollover"
    )
    args = parser.parse_args()

    from questline import create_app
    from questline.db import Database
    from questline.leaderboards import Leaderboards
    from questline.leagues import LeagueStore
    from questline.settings import Settings
    from questline.tenants import issue_key
    from workers.context import Context
    from workers.leagues import rebuild_current
    from workers.pipeline import Pipeline
    from workers.queue import InlineDispatcher

    db = Database(URL)
    pids = track_backends(db)
    if args.reuse:
        tenant_id, league_id, ids = reopen(db)
        print(f"reusing {len(ids):,} seated players; the week reopened")
    else:
        t0 = time.perf_counter()
        reset()
        tenant_id, league_id, ids = seed(args.players)
        print(f"seeded {len(ids):,} players in {time.perf_counter() - t0:.1f}s")
        bench_joins_and_report(db, pids, league_id, ids, args.threads)
    client = redis.Redis.from_url(REDIS_URL)
    store = LeagueStore(client, PREFIX)
    started = time.perf_counter()
    rebuild_current(db, store, tenant_id, WEEK_AT, league_id)
    print(f"standings written to Redis (rebuild_current): {time.perf_counter() - started:.1f}s")

    settings = Settings(database_url=URL, redis_url=REDIS_URL, redis_prefix=PREFIX, log_json=True)
    boards = Leaderboards(client, PREFIX)
    pipeline = Pipeline(db, boards, settings)
    ctx = Context(settings, db, client, boards, pipeline, InlineDispatcher(pipeline))
    with db.session() as session:
        key = issue_key(session, tenant_id)
    app = create_app(settings, context=ctx).test_client()
    rng = random.Random(6)
    headers = {"Authorization": f"Bearer {key}"}
    app.get(f"/api/v1/leagues/standings?player={ids[0]}", headers=headers)  # warm caches
    sample = [rng.choice(ids) for _ in range(args.reads)]
    for label in ("cold", "warm"):
        samples = []
        pg0, redis0, cpu0 = backend_cpu(pids), client.info("cpu"), time.process_time()
        for pid in sample:
            t = time.perf_counter()
            response = app.get(f"/api/v1/leagues/standings?player={pid}", headers=headers)
            samples.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200 and response.get_json()["joined"], response.data
        per = 1000 / len(sample)
        own = (time.process_time() - cpu0) * per
        pg = (backend_cpu(pids) - pg0) * per
        redis1 = client.info("cpu")
        rcpu = sum(redis1[k] - redis0[k] for k in ("used_cpu_sys", "used_cpu_user")) * per
        samples.sort()
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(
            f"standings read ({label}): p50 {statistics.median(samples):.2f} ms, p99 {p99:.2f} ms"
            f" over {len(samples):,} reads; CPU per read: app {own:.2f} ms, PostgreSQL"
            f" {pg:.2f} ms, Redis {rcpu:.3f} ms (in-process Flask client, one thread)"
        )

    from engine.leagues import week_window
    from workers.leagues import close_step

    week_end = week_window(WEEK_AT, "UTC").end
    total = 0.0
    while True:
        pg0, started = backend_cpu(pids), time.perf_counter()
        step = close_step(db, week_end + timedelta(minutes=10), timedelta(minutes=5), tenant_id)
        took = time.perf_counter() - started
        if step is None:
            break
        total += took
        _row, status, ranking, (events, messages) = step
        pg = backend_cpu(pids) - pg0
        print(
            f"rollover step -> {status}: {took:.1f}s (PostgreSQL CPU {pg:.1f}s);"
            f" {ranking.members:,} members, {ranking.promoted:,} promoted,"
            f" {ranking.demoted:,} demoted, {events:,} league.finished events,"
            f" {messages:,} webhook messages"
        )
    print(f"rollover: {total:.1f}s")
    db.dispose()


if __name__ == "__main__":
    main()
