"""Benchmark of the learner widgets with 1,000,000 players on the board: p99 per widget at a
fixed request rate, through HTTP, and the server-side render time alone.

Run on demand, never from the test suite::

    .venv/bin/python bench/widgets.py                          # 1,000,000 players, 200 req/s
    .venv/bin/python bench/widgets.py --players 100000 --seconds 5   # a quicker run
    .venv/bin/python bench/widgets.py --reuse    # skip the seed when a previous run left it

It drops and recreates its own PostgreSQL database (``questline_bench_widgets``), migrates it,
and uses its own Redis key prefix (``qlbenchwg``, database 13), deleting only those keys.

What each figure measures, and why this way:

* **Seed**: one tenant, ``--players`` players (COPY) with XP, a streak and one ledger row each;
  the all-time and this week's tenant boards in Redis (ZADD in pipelined chunks).
* **HTTP, open loop**: ``questline serve`` (gunicorn, ``--web-workers`` processes) answers
  ``GET /widgets/<name>?token=...`` (the whole page: token check, PostgreSQL reads, Redis reads,
  template) for viewers drawn at random from all players, so almost every viewer sits far below
  the top 10 and the leaderboard needs its second round trip for the neighbours. Requests are
  sent at a fixed rate whatever the server does and latency counts from each request's
  *scheduled* time (no coordinated omission). The client runs on the same 2 cores.
* **Render only**: ``widgets.render.fragment`` in this process, no HTTP: what one widget costs
  the server.
* **Profile** (``--profile``): whole widget pages through the Flask test client in this process
  (token check, routing, PostgreSQL, Redis, template, headers; no socket), the CPU time per
  request (``time.process_time``) and a cProfile of the same requests, the top functions by
  own time. This is the figure the shared machine cannot blur much: CPU seconds spent, not
  seconds waited.

The bench tenant runs the example rule set (``examples/rules/tenant.yaml``: badges, quests,
levels), so the badge shelf and the quests widget have something to compute.
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
import sqlalchemy.exc

# Run as ``python bench/widgets.py``, this folder comes first on sys.path and its bench modules
# (``bench/webhooks.py``) would shadow the project's packages of the same name.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "questline_bench_widgets"
URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/13"
PREFIX = "qlbenchwg"
SECRET = "bench-widgets-secret"
WIDGETS = ("leaderboard", "level", "streak", "badges", "quests", "activity", "dashboard")


def reset() -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    from questline.migrate import upgrade

    upgrade(URL)
    drop_keys()


def drop_keys() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{PREFIX}*", count=5000))
    for i in range(0, len(keys), 5000):
        client.delete(*keys[i : i + 5000])


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: io.StringIO) -> None:
    rows.seek(0)
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        while chunk := rows.read(1 << 20):
            copy.write(chunk)


def seed(players: int) -> tuple[int, list[int]]:
    from engine.leagues import window
    from questline.leaderboards import Leaderboards
    from questline.leagues import LeagueStore

    rng = random.Random(7)
    now = datetime.now(UTC)
    today = now.date().isoformat()
    with psycopg.connect(URL) as conn:
        tenant_id = conn.execute(
            "INSERT INTO tenants (name, timezone) VALUES ('bench', 'UTC') RETURNING id"
        ).fetchone()[0]
        buf = io.StringIO()
        for i in range(players):
            xp = rng.randrange(0, 50_000)
            level = max(1, int((xp / 100) ** (1 / 1.5)) + 1)
            buf.write(f"{tenant_id}\tLearner {i}\t{xp}\t{level}\t{i % 30}\t{i % 60}\t{today}\n")
        _copy(
            conn,
            "players",
            "tenant_id, display_name, xp, level, streak_current, streak_longest, last_active_day",
            buf,
        )
        rows = conn.execute("SELECT id, xp FROM players ORDER BY id").fetchall()
        ledger = io.StringIO()
        at = now.isoformat()
        for pid, xp in rows:
            ledger.write(
                f"{tenant_id}\t{pid}\tbench-{pid}\tbench\t{xp}\tbench seed: {xp} XP\t{at}\t{at}\n"
            )
        _copy(
            conn,
            "xp_ledger",
            "tenant_id, player_id, idempotency_key, rule_id, amount, explanation,"
            " occurred_at, created_at",
            ledger,
        )
        conn.execute("ANALYZE")
        conn.commit()
    client = redis.Redis.from_url(REDIS_URL)
    boards = Leaderboards(client, PREFIX)
    week = window("week", now, "UTC")
    week_key = LeagueStore(client, PREFIX).window_key(tenant_id, "week", week.key, "tenant")
    for i in range(0, len(rows), 20_000):
        chunk = {str(pid): xp for pid, xp in rows[i : i + 20_000] if xp > 0}
        pipe = client.pipeline(transaction=False)
        pipe.zadd(boards.key(tenant_id, "tenant"), chunk)
        pipe.zadd(week_key, chunk)
        pipe.execute()
    return tenant_id, [pid for pid, _ in rows]


def ensure_rules(tenant_id: int) -> None:
    """Activate the example rule set for the bench tenant unless it already has one."""
    from questline.db import Database
    from questline.models import RuleSet
    from workers.rulesets import read_document, store_version

    database = Database(URL)
    try:
        with database.session() as session:
            active = session.query(RuleSet.id).filter_by(tenant_id=tenant_id, active=True).first()
            if active is None:
                document = read_document((ROOT / "examples" / "rules" / "tenant.yaml").read_text())
                store_version(session, tenant_id, document, course=None, actor="bench")
    finally:
        database.dispose()


def profile(tenant_id: int, ids: list[int], requests: int, top: int, verbose: bool) -> None:
    """CPU per whole widget request through the Flask test client, then a cProfile of them."""
    import cProfile
    import pstats

    from questline import create_app
    from questline.settings import Settings

    settings = Settings(
        database_url=URL, redis_url=REDIS_URL, redis_prefix=PREFIX, secret_key=SECRET
    )
    from sqlalchemy import event

    app = create_app(settings)
    client = app.test_client()
    signed = tokens(tenant_id, ids, requests)
    statements: list[str] = []
    engine = app.extensions["questline"].db.engine
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for name in WIDGETS:
        paths = [f"/widgets/{name}?token={t}" for t in signed]
        for path in paths[:20]:  # warm: connections, compiled templates, parsed rules
            assert client.get(path).status_code == 200
        statements.clear()
        assert client.get(paths[0]).status_code == 200
        first = list(statements)
        cpu, wall = time.process_time(), time.perf_counter()
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (name, response.status_code)
        cpu_ms = (time.process_time() - cpu) * 1000 / len(paths)
        wall_ms = (time.perf_counter() - wall) * 1000 / len(paths)
        # Python function calls per request: unlike CPU time on a shared machine, a count that
        # other processes cannot inflate, so before/after comparisons hold under load.
        counter = cProfile.Profile()
        counter.enable()
        for path in paths[:20]:
            client.get(path)
        counter.disable()
        calls = pstats.Stats(counter).total_calls / 20  # type: ignore[attr-defined]
        print(
            f"  {name:12s} CPU {cpu_ms:6.2f} ms/request  wall {wall_ms:6.2f} ms/request"
            f"  SQL statements {len(first)}  Python calls {calls:,.0f}/request"
        )
        if verbose:
            for sql in first:
                print("      " + " ".join(sql.split())[:150])
    if top:
        profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting
        profiler.enable()
        for name in WIDGETS:
            for t in signed[: max(1, requests // 4)]:
                client.get(f"/widgets/{name}?token={t}")
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
    app.extensions["questline"].db.dispose()


def reuse(players: int) -> tuple[int, list[int]] | None:
    """The tenant and players of an earlier seed of the same size, with its boards, if present."""
    from questline.leaderboards import Leaderboards
    from questline.migrate import upgrade

    try:
        upgrade(URL)  # a database seeded before a newer migration gets its tables
        with psycopg.connect(URL) as conn:
            tenant_id = conn.execute("SELECT id FROM tenants WHERE name = 'bench'").fetchone()[0]
            ids = [r[0] for r in conn.execute("SELECT id FROM players ORDER BY id")]
    except (psycopg.Error, TypeError, sqlalchemy.exc.SQLAlchemyError):
        return None
    client = redis.Redis.from_url(REDIS_URL)
    if len(ids) != players or not client.zcard(
        Leaderboards(client, PREFIX).key(tenant_id, "tenant")
    ):
        return None
    return tenant_id, ids


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1] * 1000,
        "mean": statistics.fmean(ordered) * 1000,
    }


def tokens(tenant_id: int, ids: list[int], n: int) -> list[str]:
    from widgets.signing import EmbedGrant, sign

    rng = random.Random(11)
    return [
        sign(SECRET, EmbedGrant(tenant_id, rng.choice(ids)), ttl_seconds=86_400) for _ in range(n)
    ]


def open_loop(port: int, paths: list[str], rate: float, seconds: float, conns: int) -> dict:
    """Send ``rate`` requests/s for ``seconds``; latency from each scheduled send time."""
    work: queue.Queue[tuple[float, str] | None] = queue.Queue()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (item := work.get()) is not None:
            scheduled, path = item
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
            except Exception as exc:  # a benchmark counts every failure
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, detail = 0, repr(exc)
            done = time.perf_counter()
            with lock:
                if status == 200:
                    latencies.append(done - scheduled)
                else:
                    errors.append(str(status) if status else detail)
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(conns)]
    for t in threads:
        t.start()
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work.put((scheduled, paths[i % len(paths)]))
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"sent": total, "ok": len(latencies), "errors": len(errors), "elapsed": elapsed} | (
        percentiles(latencies) if latencies else {}
    )


def start_server(port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "QUESTLINE_DATABASE_URL": URL,
        "QUESTLINE_REDIS_URL": REDIS_URL,
        "QUESTLINE_REDIS_PREFIX": PREFIX,
        "QUESTLINE_SECRET_KEY": SECRET,
        "QUESTLINE_WEB_WORKERS": str(workers),
        "QUESTLINE_WEB_THREADS": str(threads),
        "QUESTLINE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "questline"), "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("questline serve did not come up")


def render_only(tenant_id: int, ids: list[int], calls: int) -> dict[str, dict[str, float]]:
    """Server-side cost of each widget without HTTP: ``render.fragment`` in a request context."""
    from questline import create_app
    from questline.settings import Settings
    from widgets import data, render

    settings = Settings(
        database_url=URL, redis_url=REDIS_URL, redis_prefix=PREFIX, secret_key=SECRET
    )
    app = create_app(settings)
    rng = random.Random(5)
    out = {}
    with app.test_request_context("/widgets/bench"):
        render.use_locale("en")
        for name in WIDGETS:
            params = render.parse_params({})
            samples = []
            cpu = time.process_time()
            for _ in range(calls):
                pid = rng.choice(ids)
                t0 = time.perf_counter()
                render.fragment(name, tenant_id, pid, params)
                samples.append(time.perf_counter() - t0)
            cpu_ms = (time.process_time() - cpu) * 1000 / calls
            out[name] = percentiles(samples) | {"cpu": cpu_ms}
        # The Redis part of the leaderboard alone: one pipelined round trip (size, the viewer's
        # rank, the top 10) and a second for the neighbours.
        boards = app.extensions["questline"].boards
        key = boards.key(tenant_id, "tenant")
        samples = []
        for _ in range(calls):
            t0 = time.perf_counter()
            data._redis_board(boards.client, key, rng.choice(ids), 10, 2)
            samples.append(time.perf_counter() - t0)
        out["redis reads"] = percentiles(samples)
    app.extensions["questline"].db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--players", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8, help="per worker; 1 = sync")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--render-calls", type=int, default=500)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--no-http", action="store_true", help="only the render-only figures")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="N whole requests per widget through the Flask test client: CPU per request and a"
        " cProfile; then stop",
    )
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    parser.add_argument("--sql", action="store_true", help="--profile prints each widget's SQL")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database and boards of a previous run"
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    reused = reuse(args.players) if args.reuse else None
    if reused is None:
        print(f"seeding {args.players:,} players ...", flush=True)
        reset()
        tenant_id, ids = seed(args.players)
        print(f"seeded in {time.perf_counter() - t0:.1f} s", flush=True)
    else:
        tenant_id, ids = reused
        print(f"reusing the seeded {len(ids):,} players", flush=True)
    ensure_rules(tenant_id)
    if args.profile:
        print(f"\nwhole requests through the Flask test client, {args.profile} per widget:")
        profile(tenant_id, ids, args.profile, args.top, args.sql)
        return

    print(f"\nrender only ({args.render_calls} calls per widget, ms; cpu = CPU time per call):")
    for name, figures in render_only(tenant_id, ids, args.render_calls).items():
        print(f"  {name:12s} " + "  ".join(f"{k} {v:6.2f}" for k, v in figures.items()))
    if args.no_http:
        return

    print(
        f"\nHTTP open loop at {args.rate:g} req/s for {args.seconds:g} s per widget, "
        f"{args.web_workers} gunicorn workers x {args.web_threads} threads"
        " (ms from scheduled send):"
    )
    server = start_server(args.port, args.web_workers, args.web_threads)
    try:
        signed = tokens(tenant_id, ids, 2000)
        for name in (*WIDGETS, "leaderboard-week"):
            widget, extra = (
                ("leaderboard", "&window=week") if name == "leaderboard-week" else (name, "")
            )
            paths = [f"/widgets/{widget}?token={t}{extra}" for t in signed]
            open_loop(args.port, paths[:50], args.rate, 1.0, args.connections)  # warm up
            r = open_loop(args.port, paths, args.rate, args.seconds, args.connections)
            figures = "  ".join(f"{k} {r[k]:6.2f}" for k in ("p50", "p95", "p99", "max") if k in r)
            print(
                f"  {name:16s} {figures}  ok {r['ok']}/{r['sent']}  errors {r['errors']}"
                f"  achieved {r['ok'] / r['elapsed']:.0f} req/s"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.reuse:
            drop_keys()


if __name__ == "__main__":
    main()
