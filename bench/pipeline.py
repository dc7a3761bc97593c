"""End-to-end benchmark of the Questline pipeline: HTTP ingest -> inbox -> RQ workers -> boards.

Run on demand, never from the test suite::

    .venv/bin/python bench/pipeline.py            # full run, about 4 minutes on 2 cores
    .venv/bin/python bench/pipeline.py --quick    # smoke run, well under a minute

Why it is built the way it is:

* It is self-contained so that a number in docs/performance.md can be reproduced by anyone with
  the command alone: it drops and recreates its own PostgreSQL database (``questline_bench``),
  flushes its own Redis db (14), migrates, creates tenants and starts ``questline serve``
  (gunicorn) and ``questline worker`` (RQ SimpleWorker) as subprocesses, which it always stops.
* Load comes from several client *processes* (spawned, so they share no state or GIL with the
  measuring process) each holding an HTTP/1.1 keep-alive connection. Request bodies are built
  before the clock starts, so JSON encoding in the client is not measured.
* End-to-end events/s is measured where it matters, in PostgreSQL: events accepted divided by
  the time from the first POST until every inbox row of the load tenant has status 'applied'.
* Event -> leaderboard latency is measured truly end to end by a probe thread: it POSTs one event
  for a fresh actor of a dedicated probe tenant and polls that tenant's Redis board until its
  member count grows. Only one probe is in flight at a time, so each growth belongs to exactly
  one probe and every sample is exact (see ``Prober``).
* The open-loop scenario sends at a fixed rate whatever the server does and measures latency
  from each request's *scheduled* send time, so a slow server cannot hide its queueing by
  slowing the client down (no coordinated omission).

Between scenarios the event tables are truncated and the boards deleted, so every scenario starts
from the same empty state and the scenarios are comparable.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from rq import Worker

DB_NAME = "questline_bench"
REDIS_PREFIX = "qlbench"
QUEUE_NAME = "qlbench"
LOAD_TENANT = "bench-load"
PROBE_TENANT = "bench-probe"
WARMUP_TENANT = "bench-warmup"
# Below this many busy cores (our idle services included) the machine counts as quiet.
IDLE_CORES = 0.25
EVENTS_PATH = "/api/v1/events"
KEY_LINE = re.compile(r"^tenant (\d+): .*\nAPI key \(shown once, store it now\): (\S+)", re.M)
# Players and identities are kept: the load runs against learners the service already knows.
EVENT_TABLES = "inbox_events, xp_ledger, player_course_stats"


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Everything a run depends on; printed at the start so a result names its conditions."""

    events: int
    workers: tuple[int, ...]
    batch: int
    clients: int
    open_rate: float
    open_seconds: float
    open_clients: int
    open_threads: int
    actors: int
    courses: int
    probe_interval: float
    probe_timeout: float
    drain_timeout: float
    wait_idle: float
    web_workers: int
    web_threads: int | None
    job_batch_size: int | None
    pg_url: str
    redis_url: str
    json_out: Path | None


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        description="Benchmark HTTP ingest -> RQ workers -> Redis leaderboards end to end.",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help="events per throughput scenario (default 15000; 2000 with --quick)",
    )
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated worker counts to run (default 1,2)"
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--batch", type=int, default=100, help="events per batched request")
    parser.add_argument(
        "--clients", type=int, default=4, help="client processes for the closed-loop scenarios"
    )
    parser.add_argument("--open-rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--open-seconds", type=float, default=None, help="open-loop duration")
    parser.add_argument("--open-clients", type=int, default=4, help="open-loop client processes")
    parser.add_argument(
        "--open-threads", type=int, default=4, help="connections (threads) per open-loop client"
    )
    parser.add_argument("--actors", type=int, default=2000, help="distinct learners in the load")
    parser.add_argument("--courses", type=int, default=20, help="distinct courses in the load")
    parser.add_argument("--probe-interval", type=float, default=0.075, help="probe period (s)")
    parser.add_argument("--probe-timeout", type=float, default=30.0, help="probe give-up (s)")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="max wait per scenario")
    parser.add_argument(
        "--wait-idle", type=float, default=120.0, help="max wait for a quiet machine (s)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--web-threads", type=int, default=None, help="threads per gunicorn worker (app default)"
    )
    parser.add_argument(
        "--job-batch-size", type=int, default=None, help="QUESTLINE_JOB_BATCH_SIZE (app default)"
    )
    parser.add_argument(
        "--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server URL"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14", help="Redis URL (db 14)")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    args = parser.parse_args(argv)

    events = args.events if args.events is not None else (2000 if args.quick else 15000)
    open_seconds = (
        args.open_seconds if args.open_seconds is not None else (3.0 if args.quick else 10.0)
    )
    workers = tuple(int(w) for w in str(args.workers).split(",") if w.strip())
    if not workers or any(not 1 <= w <= 8 for w in workers):
        parser.error("--workers takes counts between 1 and 8, e.g. 1,2")
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000 (the API's limit)")
    if events < args.batch or events > 1_000_000:
        parser.error("--events must be at least --batch and at most 1,000,000")
    for name in ("clients", "open_clients", "open_threads"):
        if not 1 <= getattr(args, name) <= 64:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and 64")
    if not 1 <= args.open_rate <= 20_000 or not 0.5 <= open_seconds <= 600:
        parser.error("--open-rate must be 1..20000 and --open-seconds 0.5..600")
    if not args.redis.startswith("redis://127.0.0.1") or not args.pg.startswith(
        "postgresql://postgres@127.0.0.1"
    ):
        parser.error("the benchmark only talks to services on 127.0.0.1")
    return Config(
        events=events,
        workers=workers,
        batch=args.batch,
        clients=args.clients,
        open_rate=args.open_rate,
        open_seconds=open_seconds,
        open_clients=args.open_clients,
        open_threads=args.open_threads,
        actors=max(1, args.actors),
        courses=max(1, args.courses),
        probe_interval=max(0.01, args.probe_interval),
        probe_timeout=max(1.0, args.probe_timeout),
        drain_timeout=max(10.0, args.drain_timeout),
        wait_idle=max(0.0, args.wait_idle),
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        job_batch_size=args.job_batch_size,
        pg_url=args.pg.rstrip("/"),
        redis_url=args.redis,
        json_out=args.json,
    )


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_event(tag: str, n: int, actors: int, courses: int, occurred_at: str) -> dict[str, Any]:
    """The n-th load event: a lesson completion (10 XP) spread over a fixed pool of learners."""
    learner = n % actors
    return {
        "id": f"{tag}-{n}",
        "type": "lesson.completed",
        "actor": {"id": f"learner-{learner}", "name": f"Learner {learner}"},
        "object": {"id": f"lesson-{n % 97}", "type": "lesson"},
        "context": {"course": f"c{n % courses}"},
        "occurred_at": occurred_at,
    }


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Client:
    """One HTTP/1.1 connection that reconnects by itself.

    gunicorn's sync workers answer ``Connection: close``, so in practice every request opens a
    fresh loopback connection; http.client reopens transparently. A connection error is retried
    (event ids make a repeated POST harmless: the inbox reports it as a duplicate).
    """

    def __init__(self, port: int, key: str, timeout: float = 30.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Connection": "keep-alive",
        }

    def post(self, body: bytes) -> tuple[int, int]:
        """POST a body to the events endpoint: (HTTP status, events stored or already stored)."""
        for attempt in range(3):
            try:
                self.conn.request("POST", EVENTS_PATH, body, self.headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                if attempt == 2:
                    return 0, 0
                time.sleep(0.05)
                continue
            if response.status != 202:
                return response.status, 0
            report = json.loads(data)
            return response.status, len(report["accepted"]) + len(report["duplicates"])
        return 0, 0  # pragma: no cover - the loop always returns

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------------------------
# Load generators (run in spawned client processes)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedSpec:
    """A closed-loop share: client ``index`` of ``clients`` sends requests index, index+clients…"""

    port: int
    key: str
    tag: str
    events: int
    batch: int
    actors: int
    courses: int
    index: int
    clients: int


@dataclass(frozen=True)
class OpenSpec:
    """An open-loop share: requests at t0 + i/rate for every i this client's threads own."""

    port: int
    key: str
    tag: str
    rate: float
    total: int
    actors: int
    courses: int
    index: int
    clients: int
    threads: int


@dataclass
class ClientReport:
    """What one client process measured; sent back to the parent through a queue."""

    index: int
    requests: int = 0
    stored: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    late_sends: int = 0
    first_send: float = float("inf")
    last_done: float = 0.0
    cpu_seconds: float = 0.0


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def closed_loop_client(spec: ClosedSpec, barrier: Any, progress: Any, results: Any) -> None:
    """Send this client's requests back to back on one connection, as fast as the server allows.

    Bodies are encoded before the barrier so the measured interval holds HTTP work only.
    """
    occurred = now_iso()
    bodies: list[tuple[bytes, int]] = []
    n_requests = -(-spec.events // spec.batch)
    for r in range(spec.index, n_requests, spec.clients):
        first = r * spec.batch
        count = min(spec.batch, spec.events - first)
        events = [
            make_event(spec.tag, n, spec.actors, spec.courses, occurred)
            for n in range(first, first + count)
        ]
        payload: Any = events[0] if spec.batch == 1 else {"events": events}
        bodies.append((json.dumps(payload, separators=(",", ":")).encode(), count))
    client = Client(spec.port, spec.key)
    report = ClientReport(spec.index)
    barrier.wait(timeout=120)
    cpu_start = _cpu()
    for body, _count in bodies:
        sent = time.monotonic()
        report.first_send = min(report.first_send, sent)
        status, stored = client.post(body)
        done = time.monotonic()
        report.last_done = done
        report.requests += 1
        report.statuses[status] = report.statuses.get(status, 0) + 1
        report.latencies.append(done - sent)
        if status == 202:
            report.stored += stored
            with progress.get_lock():
                progress.value += stored
        else:
            report.errors += 1
    report.cpu_seconds = _cpu() - cpu_start
    client.close()
    results.put(report)


def open_loop_client(
    spec: OpenSpec, barrier: Any, start_at: Any, progress: Any, results: Any
) -> None:
    """Send single-event requests on a fixed schedule from ``spec.threads`` connections.

    Slot i is due at ``t0 + i / rate`` and belongs to connection ``i % (clients * threads)``.
    Latency is measured from the due time, so if the server (or a connection) falls behind, the
    wait counts against the server instead of silently lowering the offered rate.
    """
    occurred = now_iso()
    lanes = spec.clients * spec.threads
    owned: list[list[tuple[int, bytes]]] = [[] for _ in range(spec.threads)]
    for t in range(spec.threads):
        lane = spec.index * spec.threads + t
        for i in range(lane, spec.total, lanes):
            event = make_event(spec.tag, i, spec.actors, spec.courses, occurred)
            owned[t].append((i, json.dumps(event, separators=(",", ":")).encode()))
    report = ClientReport(spec.index)
    lock = threading.Lock()
    barrier.wait(timeout=120)
    t0 = float(start_at.value)
    cpu_start = _cpu()

    def lane_loop(slots: list[tuple[int, bytes]]) -> None:
        client = Client(spec.port, spec.key)
        for i, body in slots:
            due = t0 + i / spec.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic()
            status, stored = client.post(body)
            done = time.monotonic()
            with lock:
                report.first_send = min(report.first_send, sent)
                report.last_done = max(report.last_done, done)
                report.requests += 1
                report.statuses[status] = report.statuses.get(status, 0) + 1
                report.latencies.append(done - due)
                report.service.append(done - sent)
                if sent - due > 0.010:
                    report.late_sends += 1
                if status == 202:
                    report.stored += stored
                else:
                    report.errors += 1
            if status == 202:
                with progress.get_lock():
                    progress.value += stored
        client.close()

    threads = [threading.Thread(target=lane_loop, args=(slots,)) for slots in owned]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=spec.total / spec.rate + 120)
    report.cpu_seconds = _cpu() - cpu_start
    results.put(report)


# --------------------------------------------------------------------------------------------
# The probe: true event -> leaderboard latency
# --------------------------------------------------------------------------------------------


class Prober:
    """Measure event -> leaderboard latency with real events sent at a steady pace.

    Every ``interval`` seconds a sender thread POSTs a ``lesson.completed`` for a brand-new actor
    of the probe tenant, noting the time just before the POST. The probe tenant's board holds
    probe players only, so a watcher thread polls its ``ZCARD`` every 5 ms; when the count
    grows it notes the time, reads the new members (player ids) and looks up, in PostgreSQL,
    which actors they are (the player and its identity are committed before the board write).
    Latency = growth seen - POST sent: the full path, HTTP ingest + wake-up + RQ + claim +
    apply + Redis, to within the 5 ms poll. Probes never wait for each other, so a backlog
    shows up in the samples rather than thinning them out.
    """

    def __init__(
        self,
        *,
        port: int,
        key: str,
        board_key: str,
        redis_url: str,
        db_url: str,
        tenant_id: int,
        tag: str,
        interval: float,
        timeout: float,
    ) -> None:
        self.port, self.key, self.board_key = port, key, board_key
        self.redis_url, self.db_url, self.tenant_id = redis_url, db_url, tenant_id
        self.tag, self.interval, self.timeout = tag, interval, timeout
        self.stopping = threading.Event()
        self.sent: dict[str, float] = {}
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.lost = 0
        self.failed_posts = 0
        self.error: BaseException | None = None
        self._board = redis.Redis.from_url(redis_url)
        self._known = {m.decode() for m in self._board.zrange(board_key, 0, -1)}
        self._sender = threading.Thread(target=self._send, name=f"{tag}-send", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name=f"{tag}-watch", daemon=True)

    def start(self) -> None:
        self._sender.start()
        self._watcher.start()

    def stop(self) -> None:
        """Send no new probe; those in flight are still waited for (each up to ``timeout``)."""
        self.stopping.set()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._sender.join(timeout=max(0.0, deadline - time.monotonic()))
        self._watcher.join(timeout=max(0.0, deadline - time.monotonic()))
        self._board.close()

    def _send(self) -> None:
        client = Client(self.port, self.key)
        try:
            next_at = time.monotonic()
            for k in range(1, 1_000_000):
                if self.stopping.wait(max(0.0, next_at - time.monotonic())):
                    return
                next_at += self.interval
                actor = f"{self.tag}-actor-{k}"
                body = json.dumps(
                    {
                        "id": f"{self.tag}-{k}",
                        "type": "lesson.completed",
                        "actor": {"id": actor},
                        "object": {"id": "probe-lesson", "type": "lesson"},
                        "occurred_at": now_iso(),
                    }
                ).encode()
                sent = time.monotonic()
                with self.lock:
                    self.sent[actor] = sent
                status, stored = client.post(body)
                if status != 202 or stored != 1:
                    with self.lock:
                        self.failed_posts += 1
                        del self.sent[actor]
                # A slow POST must not turn into a burst of catch-up probes.
                next_at = max(next_at, time.monotonic())
        except BaseException as exc:  # reported by the caller, never swallowed
            self.error = exc
        finally:
            client.close()

    def _watch(self) -> None:
        board = redis.Redis.from_url(self.redis_url)
        try:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                while True:
                    with self.lock:
                        pending = dict(self.sent)
                    now = time.monotonic()
                    if self.stopping.is_set() and not self._sender.is_alive():
                        overdue = [a for a, t in pending.items() if now - t > self.timeout]
                        if len(overdue) == len(pending):
                            with self.lock:
                                self.lost += len(overdue)
                            return
                    if int(board.zcard(self.board_key)) > len(self._known):
                        seen_at = time.monotonic()
                        self._landed(board, conn, seen_at)
                    time.sleep(0.005)
        except BaseException as exc:  # reported by the caller, never swallowed
            self.error = exc
        finally:
            board.close()

    def _landed(self, board: redis.Redis, conn: psycopg.Connection[Any], seen_at: float) -> None:
        """Attribute the board's new members to the probes whose actors they are."""
        members = {m.decode() for m in board.zrange(self.board_key, 0, -1)}
        new = [int(m) for m in members - self._known]
        self._known |= members
        rows = conn.execute(
            "SELECT value FROM player_identities"
            " WHERE tenant_id = %s AND kind = 'actor' AND player_id = ANY(%s)",
            (self.tenant_id, new),
        ).fetchall()
        with self.lock:
            for (actor,) in rows:
                sent = self.sent.pop(actor, None)
                if sent is not None:
                    self.latencies.append(seen_at - sent)


# --------------------------------------------------------------------------------------------
# Subprocesses and the environment they share
# --------------------------------------------------------------------------------------------


def questline_bin() -> str:
    """The ``questline`` script of the interpreter running this file (the project's venv)."""
    candidate = Path(sys.executable).parent / "questline"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("questline")
    if not found:
        raise SystemExit("cannot find the `questline` command; run with the project's venv")
    return found


def read_cpu_ticks() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, command name, utime+stime ticks) for every process we may read."""
    out: dict[int, tuple[int, str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                raw = handle.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        out[int(entry)] = (int(rest[1]), name, int(rest[11]) + int(rest[12]))
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


class Services:
    """The gunicorn server and RQ workers this benchmark started, and nothing else.

    Each child gets its own session (process group), so stopping one also reaches whatever it
    forked (gunicorn's workers): SIGTERM first, SIGKILL to the group after a grace period.
    """

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._started = 0

    def run(self, *args: str, timeout: float = 120) -> str:
        """Run a short ``questline`` command to completion; its stdout, or exit with stderr."""
        done = subprocess.run(
            [questline_bin(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"questline {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self._started += 1
        path = self.logdir / f"{self._started:02d}-{name}.log"
        with open(path, "wb") as out:
            return subprocess.Popen(
                [questline_bin(), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def start_server(self, port: int, web_workers: int, web_threads: int | None = None) -> None:
        threads = [] if web_threads is None else ["--threads", str(web_threads)]
        self.server = self._spawn(
            "serve", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(web_workers), *threads,
        )  # fmt: skip

    def start_workers(self, count: int) -> None:
        self.workers = [self._spawn(f"worker{i}", "worker") for i in range(count)]

    def stop_workers(self) -> None:
        for proc in self.workers:
            self._signal(proc, signal.SIGTERM)
        for proc in self.workers:
            self._reap(proc)
        self.workers = []

    def stop_all(self) -> None:
        self.stop_workers()
        if self.server is not None:
            self._signal(self.server, signal.SIGTERM)
            self._reap(self.server)
            self.server = None

    def check_alive(self) -> None:
        for proc in [p for p in [self.server, *self.workers] if p is not None]:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(map(str, proc.args))} exited ({proc.returncode})")

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
        # The group leader is gone; anything it forked and left behind goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds used so far by: our server tree, our workers, PostgreSQL, Redis."""
        ticks = read_cpu_ticks()
        hz = os.sysconf("SC_CLK_TCK")

        def tree(root: int) -> int:
            total, stack, seen = 0, [root], set()
            while stack:
                pid = stack.pop()
                if pid in seen or pid not in ticks:
                    continue
                seen.add(pid)
                total += ticks[pid][2]
                stack.extend(p for p, (pp, _n, _t) in ticks.items() if pp == pid)
            return total

        return {
            "gunicorn": tree(self.server.pid) / hz if self.server else 0.0,
            "workers": sum(tree(w.pid) for w in self.workers) / hz,
            "postgres": sum(t for _pp, n, t in ticks.values() if n == "postgres") / hz,
            "redis": sum(t for _pp, n, t in ticks.values() if n.startswith("redis-server")) / hz,
            "bench": _cpu(),
            "machine": machine_busy_seconds(),
        }


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    """One scenario's figures. Times in seconds; rates per second."""

    name: str
    workers: int
    kind: str  # "closed" or "open"
    batch: int
    events: int = 0
    requests: int = 0
    errors: int = 0
    ingest_seconds: float = 0.0
    e2e_seconds: float | None = None
    drain_after_post: float | None = None
    req_p50: float | None = None
    req_p99: float | None = None
    service_p99: float | None = None
    offered_rate: float | None = None
    late_sends: int = 0
    probes: int = 0
    probes_lost: int = 0
    probe_p50: float | None = None
    probe_p99: float | None = None
    probe_max: float | None = None
    cores: dict[str, float] = field(default_factory=dict)
    jobs: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def ingest_rps(self) -> float:
        return self.requests / self.ingest_seconds if self.ingest_seconds else 0.0

    @property
    def ingest_eps(self) -> float:
        return self.events / self.ingest_seconds if self.ingest_seconds else 0.0

    @property
    def e2e_eps(self) -> float | None:
        return self.events / self.e2e_seconds if self.e2e_seconds else None

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.update(ingest_rps=self.ingest_rps, ingest_eps=self.ingest_eps, e2e_eps=self.e2e_eps)
        return out


@dataclass
class Tenant:
    id: int
    key: str


class Bench:
    """Owns the database, Redis and services of one run, and runs its scenarios."""

    def __init__(self, cfg: Config, services: Services, port: int) -> None:
        self.cfg = cfg
        self.services = services
        self.port = port
        self.db_url = f"{cfg.pg_url}/{DB_NAME}"
        self.redis = redis.Redis.from_url(cfg.redis_url)
        self.tenants: dict[str, Tenant] = {}
        self.mp = mp.get_context("spawn")
        self.seq = 0

    # -- state ---------------------------------------------------------------------------------

    def create_tenants(self) -> None:
        for name in (LOAD_TENANT, PROBE_TENANT, WARMUP_TENANT):
            match = KEY_LINE.search(self.services.run("tenants", "create", name))
            if not match:
                raise SystemExit(f"could not read the API key of tenant {name}")
            self.tenants[name] = Tenant(int(match.group(1)), match.group(2))

    def board_key(self, tenant: str) -> str:
        return f"{REDIS_PREFIX}:{{t{self.tenants[tenant].id}}}:board:tenant"

    def reset(self) -> None:
        """Empty the event tables and boards so each scenario starts from the same state.

        VACUUM too: this server runs with autovacuum off, and each scenario rewrites every
        player row several times; without it later scenarios would pay for earlier ones' bloat.
        """
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(f"TRUNCATE {EVENT_TABLES} RESTART IDENTITY")
            conn.execute("VACUUM ANALYZE")
        for key in list(self.redis.scan_iter(match=f"{REDIS_PREFIX}:*:board:*", count=1000)):
            self.redis.delete(key)

    def jobs_done(self) -> int:
        """Drain jobs our RQ workers have finished so far (RQ keeps a count per worker)."""
        return sum(w.successful_job_count for w in Worker.all(connection=self.redis))

    def applied(self, conn: psycopg.Connection[Any], tenant: str) -> int:
        row = conn.execute(
            "SELECT count(*) FROM inbox_events WHERE tenant_id = %s AND status = 'applied'",
            (self.tenants[tenant].id,),
        ).fetchone()
        return int(row[0]) if row else 0

    def failed(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT count(*) FROM inbox_events WHERE status = 'failed'").fetchone()
        return int(row[0]) if row else 0

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.services.check_alive()
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            time.sleep(0.2)
        raise RuntimeError(f"/healthz did not answer 200 within {timeout:.0f}s")

    def seed(self) -> None:
        """Make every learner of the load known (one event each), off the clock.

        A production inbox is mostly events of existing players; creating a player costs a
        savepoint and two inserts, so a benchmark of 100% new learners would measure sign-ups.
        (The probes, by contrast, are always new players: the slower path.)
        """
        self.seq += 1
        events = [
            make_event(f"seed{self.seq}", n, self.cfg.actors, self.cfg.courses, now_iso())
            for n in range(self.cfg.actors)
        ]
        self._post_and_wait(LOAD_TENANT, [events[i : i + 500] for i in range(0, len(events), 500)])

    def warm_up(self) -> None:
        """Touch every gunicorn worker, RQ worker import path and pool once, off the clock."""
        self.seq += 1
        tag = f"warm{self.seq}"
        batches = [
            [make_event(tag, r * 50 + n, 50, 5, now_iso()) for n in range(50)] for r in range(10)
        ]
        singles = [make_event(f"{tag}s", n, 50, 5, now_iso()) for n in range(20)]
        self._post_and_wait(WARMUP_TENANT, [*batches, *singles])

    def _post_and_wait(self, tenant: str, bodies: list[Any], timeout: float = 120.0) -> None:
        """POST each body (a list is a batch, a dict one event) and wait until all are applied."""
        client = Client(self.port, self.tenants[tenant].key)
        stored = 0
        for item in bodies:
            payload = {"events": item} if isinstance(item, list) else item
            stored += client.post(json.dumps(payload).encode())[1]
        client.close()
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while self.applied(conn, tenant) < stored:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{tenant}: events not applied within {timeout:.0f}s")
                self.services.check_alive()
                time.sleep(0.1)

    def wait_idle(self) -> float:
        """Wait (bounded) until nothing else keeps the CPUs busy; return the busy cores seen.

        The machine is shared: a test suite running next to the benchmark would silently take
        cores from it, so each scenario starts only once the machine is quiet, or after
        ``--wait-idle`` seconds with a warning (the CPU table then shows the "other" load).
        """
        deadline = time.monotonic() + self.cfg.wait_idle
        while True:
            before, start = machine_busy_seconds(), time.monotonic()
            time.sleep(1.0)
            busy = (machine_busy_seconds() - before) / (time.monotonic() - start)
            if busy < IDLE_CORES:
                return busy
            if time.monotonic() >= deadline:
                log(f"WARNING: machine still busy ({busy:.2f} cores) after waiting; running anyway")
                return busy
            log(f"machine busy ({busy:.2f} cores used by other processes); waiting")
            time.sleep(2.0)

    # -- running ---------------------------------------------------------------------------------

    def _probe(self, tag: str) -> Prober:
        return Prober(
            port=self.port,
            key=self.tenants[PROBE_TENANT].key,
            board_key=self.board_key(PROBE_TENANT),
            redis_url=self.cfg.redis_url,
            db_url=self.db_url,
            tenant_id=self.tenants[PROBE_TENANT].id,
            tag=tag,
            interval=self.cfg.probe_interval,
            timeout=self.cfg.probe_timeout,
        )

    def run_closed(self, workers: int, batch: int) -> Result:
        """Saturating load: ``clients`` connections post back to back; then wait for the drain."""
        cfg = self.cfg
        label = f"batch {batch}" if batch > 1 else "single"
        result = Result(f"{label}, closed loop", workers, "closed", batch)
        self.seq += 1
        tag = f"s{self.seq}"
        specs = [
            ClosedSpec(
                port=self.port,
                key=self.tenants[LOAD_TENANT].key,
                tag=tag,
                events=cfg.events,
                batch=batch,
                actors=cfg.actors,
                courses=cfg.courses,
                index=i,
                clients=cfg.clients,
            )
            for i in range(cfg.clients)
        ]
        barrier = self.mp.Barrier(cfg.clients + 1)
        progress = self.mp.Value("q", 0)
        results = self.mp.Queue()
        procs = [
            self.mp.Process(target=closed_loop_client, args=(s, barrier, progress, results))
            for s in specs
        ]
        return self._drive(result, tag, procs, barrier, progress, results, None)

    def run_open(self, workers: int) -> Result:
        """Fixed-rate single-event requests: ingest latency at a load the server can sustain."""
        cfg = self.cfg
        result = Result(f"single, open loop {cfg.open_rate:g}/s", workers, "open", 1)
        result.offered_rate = cfg.open_rate
        self.seq += 1
        tag = f"o{self.seq}"
        total = int(cfg.open_rate * cfg.open_seconds)
        specs = [
            OpenSpec(
                port=self.port,
                key=self.tenants[LOAD_TENANT].key,
                tag=tag,
                rate=cfg.open_rate,
                total=total,
                actors=cfg.actors,
                courses=cfg.courses,
                index=i,
                clients=cfg.open_clients,
                threads=cfg.open_threads,
            )
            for i in range(cfg.open_clients)
        ]
        barrier = self.mp.Barrier(cfg.open_clients + 1)
        start_at = self.mp.Value("d", 0.0)
        progress = self.mp.Value("q", 0)
        results = self.mp.Queue()
        procs = [
            self.mp.Process(target=open_loop_client, args=(s, barrier, start_at, progress, results))
            for s in specs
        ]
        return self._drive(result, tag, procs, barrier, progress, results, start_at)

    def _drive(
        self,
        result: Result,
        tag: str,
        procs: list[Any],
        barrier: Any,
        progress: Any,
        results: Any,
        start_at: Any,
    ) -> Result:
        """Start the clients and the probe, follow progress, stop once everything is applied."""
        self.reset()
        self.wait_idle()
        name = f"{result.workers}w {result.name}"
        log(f"{name}: starting {len(procs)} client processes")
        for proc in procs:
            proc.start()
        reports: list[ClientReport] = []
        prober = self._probe(f"probe-{tag}")
        try:
            if start_at is not None:
                # Every lane's first slot is due shortly after all clients are ready.
                start_at.value = time.monotonic() + 0.3
            barrier.wait(timeout=120)
            cpu_before = self.services.cpu_snapshot()
            jobs_before = self.jobs_done()
            wall_start = time.monotonic()
            prober.start()
            reports = self._follow(name, procs, progress, results, result)
            wall = time.monotonic() - wall_start
            cpu_after = self.services.cpu_snapshot()
            result.jobs = self.jobs_done() - jobs_before
        finally:
            prober.stop()
            for proc in procs:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=5)
            prober.join(timeout=self.cfg.probe_timeout + 5)

        client_cpu = sum(r.cpu_seconds for r in reports)
        result.cores = {k: (cpu_after[k] - cpu_before[k]) / wall for k in cpu_before}
        result.cores["clients"] = client_cpu / wall
        ours = sum(v for k, v in result.cores.items() if k != "machine")
        result.cores["other"] = max(0.0, result.cores.pop("machine") - ours)
        result.requests = sum(r.requests for r in reports)
        result.events = sum(r.stored for r in reports)
        result.errors = sum(r.errors for r in reports)
        for report in reports:
            for status, count in report.statuses.items():
                result.statuses[str(status)] = result.statuses.get(str(status), 0) + count
        first = min(r.first_send for r in reports)
        if start_at is not None:
            first = min(first, float(start_at.value))
        last = max(r.last_done for r in reports)
        result.ingest_seconds = last - first
        latencies = [x for r in reports for x in r.latencies]
        result.req_p50, result.req_p99 = percentile(latencies, 50), percentile(latencies, 99)
        result.service_p99 = percentile([x for r in reports for x in r.service], 99)
        result.late_sends = sum(r.late_sends for r in reports)
        if result.e2e_seconds is not None:
            # _follow stored the absolute time all rows were applied; make it relative.
            result.drain_after_post = max(0.0, result.e2e_seconds - last)
            result.e2e_seconds -= first
        if prober.error is not None:
            log(f"{name}: WARNING the probe stopped early: {prober.error!r}")
        result.probes = len(prober.latencies)
        result.probes_lost = prober.lost + prober.failed_posts
        result.probe_p50 = percentile(prober.latencies, 50)
        result.probe_p99 = percentile(prober.latencies, 99)
        result.probe_max = max(prober.latencies) if prober.latencies else None
        log(f"{name}: {summary(result)}")
        return result

    def _follow(
        self, name: str, procs: list[Any], progress: Any, results: Any, result: Result
    ) -> list[ClientReport]:
        """Poll until the clients are done and every stored load event is applied.

        The applied count is polled every 250 ms while clients are posting (progress only) and
        every 25 ms afterwards, when it decides the end-to-end time.
        """
        reports: list[ClientReport] = []
        deadline = time.monotonic() + self.cfg.drain_timeout
        next_print = time.monotonic() + 2.0
        started = time.monotonic()
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while True:
                now = time.monotonic()
                if now > deadline:
                    raise RuntimeError(
                        f"{name}: not done after {self.cfg.drain_timeout:.0f}s "
                        f"({len(reports)}/{len(procs)} clients finished)"
                    )
                with contextlib.suppress(queue.Empty):
                    while len(reports) < len(procs):
                        reports.append(results.get(timeout=0.001))
                if len(reports) < len(procs) and not any(p.is_alive() for p in procs):
                    # A client died without reporting; give the queue a last chance.
                    with contextlib.suppress(queue.Empty):
                        reports.append(results.get(timeout=2))
                    if len(reports) < len(procs):
                        raise RuntimeError(f"{name}: a client process died")
                posting = len(reports) < len(procs)
                applied = self.applied(conn, LOAD_TENANT)
                checked = time.monotonic()
                if not posting and applied >= sum(r.stored for r in reports):
                    result.e2e_seconds = checked
                    failed = self.failed(conn)
                    if failed:
                        log(f"{name}: WARNING {failed} inbox rows failed")
                    return reports
                if checked >= next_print:
                    self.services.check_alive()
                    log(
                        f"{name}: t={checked - started:5.1f}s posted {progress.value:>7} "
                        f"applied {applied:>7}"
                    )
                    next_print = checked + 2.0
                time.sleep(0.25 if posting else 0.025)


def summary(r: Result) -> str:
    parts = [
        f"{r.events} events in {r.requests} requests",
        f"ingest {r.ingest_rps:.0f} req/s ({r.ingest_eps:.0f} ev/s)",
        f"request p50/p99 {ms(r.req_p50)}/{ms(r.req_p99)} ms",
    ]
    if r.e2e_eps is not None:
        parts.append(f"end to end {r.e2e_eps:.0f} ev/s")
    parts.append(f"probe p50/p99 {ms(r.probe_p50)}/{ms(r.probe_p99)} ms (n={r.probes})")
    if r.errors:
        parts.append(f"{r.errors} failed requests {r.statuses}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def render_table(results: list[Result]) -> str:
    """The results as a Markdown table (readable in a terminal, pasteable into the docs)."""
    head = [
        "workers", "scenario", "events", "requests", "ingest req/s", "ingest ev/s",
        "req p50 ms", "req p99 ms", "end-to-end ev/s", "drain after last POST s",
        "probe p50 ms", "probe p99 ms", "probes",
    ]  # fmt: skip
    rows = [head]
    for r in results:
        e2e = r.e2e_eps
        rows.append(
            [
                str(r.workers),
                r.name,
                str(r.events),
                str(r.requests),
                f"{r.ingest_rps:.0f}",
                f"{r.ingest_eps:.0f}",
                ms(r.req_p50),
                ms(r.req_p99),
                "-" if e2e is None else f"{e2e:.0f}",
                "-" if r.drain_after_post is None else f"{r.drain_after_post:.2f}",
                ms(r.probe_p50),
                ms(r.probe_p99),
                f"{r.probes}" + (f" ({r.probes_lost} lost)" if r.probes_lost else ""),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in rows]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def render_cpu(results: list[Result]) -> str:
    """Cores used by each component during each scenario (2.00 = the whole machine)."""
    keys = ["gunicorn", "workers", "postgres", "redis", "clients", "bench", "other"]
    rows = [["workers", "scenario", *keys, "total", "drain jobs", "events/job"]]
    for r in results:
        total = sum(r.cores.get(k, 0.0) for k in keys)
        per_job = f"{r.events / r.jobs:.1f}" if r.jobs else "-"
        rows.append(
            [
                str(r.workers),
                r.name,
                *(f"{r.cores.get(k, 0.0):.2f}" for k in keys),
                f"{total:.2f}",
                str(r.jobs),
                per_job,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in rows]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def render_targets(results: list[Result]) -> str:
    """Each target of the issue against the best (or relevant) measured figure."""

    def best(kind: str, batch: int) -> float:
        rates = [r.e2e_eps or 0.0 for r in results if r.kind == kind and r.batch == batch]
        return max(rates, default=0.0)

    open_runs = [r for r in results if r.kind == "open"]
    worst_open_p99 = max((r.req_p99 or 0.0 for r in open_runs), default=None)
    probe_p99s = [r.probe_p99 for r in results if r.probe_p99 is not None]
    lines = []
    batched = best("closed", 100)
    single = best("closed", 1)
    lines.append(f"end to end, batches of 100 >= 2000 ev/s: {batched:.0f} -> "
                 f"{'MET' if batched >= 2000 else 'MISSED'}")  # fmt: skip
    lines.append(f"end to end, one event per request >= 700 ev/s: {single:.0f} -> "
                 f"{'MET' if single >= 700 else 'MISSED'}")  # fmt: skip
    if worst_open_p99 is not None:
        rates = ", ".join(f"{r.requests / r.ingest_seconds:.0f}" for r in open_runs)
        lines.append(
            f"ingest p99 < 50 ms at 500 req/s: worst p99 {worst_open_p99 * 1000:.1f} ms "
            f"(achieved {rates} req/s) -> {'MET' if worst_open_p99 < 0.05 else 'MISSED'}"
        )
    for r in results:
        if r.probe_p99 is not None:
            lines.append(
                f"event->leaderboard p99 < 1 s [{r.workers}w {r.name}]: "
                f"{r.probe_p99 * 1000:.0f} ms -> {'MET' if r.probe_p99 < 1.0 else 'MISSED'}"
            )
    if not probe_p99s:
        lines.append("event->leaderboard: no probe landed")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def prepare_database(cfg: Config) -> None:
    """Drop and recreate the benchmark's own database (never any other)."""
    with psycopg.connect(f"{cfg.pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def bench_env(cfg: Config) -> dict[str, str]:
    """The subprocesses' environment: ours minus any QUESTLINE_* the caller happened to set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_")}
    env.update(
        QUESTLINE_DATABASE_URL=f"{cfg.pg_url}/{DB_NAME}",
        QUESTLINE_REDIS_URL=cfg.redis_url,
        QUESTLINE_REDIS_PREFIX=REDIS_PREFIX,
        QUESTLINE_QUEUE_NAME=QUEUE_NAME,
        QUESTLINE_WEB_WORKERS=str(cfg.web_workers),
        QUESTLINE_LOG_LEVEL="WARNING",
        # The benchmark is the only writer: the sweep interval is irrelevant, keys are throwaway.
        QUESTLINE_SECRET_KEY="bench-only-secret",
    )
    if cfg.job_batch_size is not None:
        env["QUESTLINE_JOB_BATCH_SIZE"] = str(cfg.job_batch_size)
    return env


def code_version() -> str:
    """The commit measured, with "+dirty" when the working tree differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty=+dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() or "unknown"


def describe(cfg: Config, port: int, logdir: Path) -> None:
    log(f"code: {code_version()}")
    log(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        f"server http://127.0.0.1:{port} (gunicorn, {cfg.web_workers} workers x "
        f"{cfg.web_threads or 'default'} threads); "
        f"logs in {logdir}"
    )
    log(
        f"closed loop: {cfg.events} events per scenario, {cfg.clients} client processes x 1 "
        f"connection; open loop: {cfg.open_rate:g} req/s for {cfg.open_seconds:g}s from "
        f"{cfg.open_clients} processes x {cfg.open_threads} connections; "
        f"{cfg.actors} learners, {cfg.courses} courses; "
        f"probe every {cfg.probe_interval * 1000:.0f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    logdir = Path(tempfile.mkdtemp(prefix="questline-bench-"))
    port = free_port()
    describe(cfg, port, logdir)
    env = bench_env(cfg)
    services = Services(env, logdir)
    results: list[Result] = []
    wall_start = time.monotonic()
    try:
        log(f"recreating database {DB_NAME}, flushing {cfg.redis_url}")
        prepare_database(cfg)
        redis.Redis.from_url(cfg.redis_url).flushdb()
        services.run("db", "upgrade")
        bench = Bench(cfg, services, port)
        bench.create_tenants()
        services.start_server(port, cfg.web_workers, cfg.web_threads)
        bench.wait_healthy()
        for count in cfg.workers:
            log(f"starting {count} worker(s)")
            services.start_workers(count)
            if not results:
                log(f"seeding {cfg.actors} learners")
                bench.seed()
            bench.warm_up()
            results.append(bench.run_closed(count, cfg.batch))
            results.append(bench.run_closed(count, 1))
            results.append(bench.run_open(count))
            services.stop_workers()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        services.stop_all()
        with contextlib.suppress(Exception):
            _print_log_tails(logdir)
    print()
    print(f"Results ({os.cpu_count()} cores, {time.monotonic() - wall_start:.0f}s total):")
    print(render_table(results))
    print()
    print("Cores used per component (CPU seconds / wall seconds of the scenario):")
    print(render_cpu(results))
    print()
    print(render_targets(results))
    if cfg.json_out is not None:
        payload = {"config": {k: str(v) for k, v in cfg.__dict__.items()}}
        payload["results"] = [r.as_dict() for r in results]
        cfg.json_out.write_text(json.dumps(payload, indent=2, default=str))
    return 0


def _print_log_tails(logdir: Path) -> None:
    """Show the end of any subprocess log that holds an error, so failures are not silent."""
    for path in sorted(logdir.glob("*.log")):
        text = path.read_text(errors="replace")
        if any(word in text for word in ("Traceback", "ERROR", "error")):
            tail = "\n".join(text.splitlines()[-15:])
            log(f"{path.name} reports errors; last lines:\n{tail}")


if __name__ == "__main__":
    sys.exit(main())
