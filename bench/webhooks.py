"""Benchmark of the webhook receivers: signed single-event deliveries, durable before the answer.

Run on demand, never from the test suite::

    .venv/bin/python bench/webhooks.py             # full run, about 2 minutes on 2 cores
    .venv/bin/python bench/webhooks.py --quick     # smoke run

It recreates its own PostgreSQL database (``questline_bench_webhooks``) and Redis db 12, starts
``questline serve`` (gunicorn, 2 sync workers) as a subprocess and, per kind (HubSpot v3 and
Standard Webhooks):

* closed loop: client *processes* (spawned, no shared GIL) each on a keep-alive connection send
  pre-signed single-event deliveries as fast as answers come back -> requests/s;
* open loop: a fixed rate (500/s) whatever the server does, latency measured from each request's
  *scheduled* send time (no coordinated omission) -> p50/p99;
* nothing lost: afterwards ``questline worker --burst`` applies the inbox, and the count of
  events applied must equal the count the receiver acknowledged (2xx) - checked, not assumed.

Deliveries are signed just before each scenario (the timestamps stay inside the 5-minute window);
signing is not measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from common import QUESTLINE, free_port, fresh_database, percentile, service_env, start_serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "questline_bench_webhooks"
PREFIX = "qlbenchwh"  # Redis key prefix and RQ queue of this benchmark
PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/12"  # db 12: no other bench uses (or flushes) it


def _ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 if it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_seconds(server_pid: int, db_url: str) -> tuple[float, float]:
    """CPU seconds used so far by the web server (gunicorn master + workers) and by the
    PostgreSQL backends serving the bench database. CPU time, unlike wall time, hardly depends
    on what else the shared machine runs, so it gives a load-independent cost per request."""
    hz = os.sysconf("SC_CLK_TCK")
    web = sum(_ticks(p) for p in [server_pid, *_children(server_pid)]) / hz
    with psycopg.connect(db_url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )]  # fmt: skip
    return web, sum(_ticks(p) for p in pids) / hz


def signed_requests(kind: str, url: str, secret: str, tag: str, n: int) -> list[tuple[bytes, dict]]:
    """``n`` distinct single-event deliveries, signed as the source would sign them."""
    from webhooks.signatures import hubspot_v3, standard_sign

    out = []
    now_ms = int(time.time() * 1000)
    for i in range(n):
        if kind == "hubspot":
            body = json.dumps([{
                "eventId": i, "subscriptionId": hash(tag) % 10**6, "portalId": 62515,
                "occurredAt": now_ms, "subscriptionType": "contact.creation",
                "attemptNumber": 0, "objectId": 1000 + i % 500, "appId": 1,
            }]).encode()  # fmt: skip
            stamp = str(now_ms)
            signature = hubspot_v3(secret, "POST", url, body, stamp)
            headers = {"X-HubSpot-Request-Timestamp": stamp, "X-HubSpot-Signature-v3": signature}
        else:
            body = json.dumps({
                "type": "lesson.completed", "timestamp": "2026-11-20T10:00:00Z",
                "data": {"actor": {"id": f"learner-{i % 500}"}, "object": {"id": f"l-{i}"}},
            }).encode()  # fmt: skip
            msg_id, stamp = f"msg_{tag}_{i}", str(now_ms // 1000)
            headers = {"webhook-id": msg_id, "webhook-timestamp": stamp,
                       "webhook-signature": standard_sign(secret, msg_id, stamp, body)}  # fmt: skip
        headers["Content-Type"] = "application/json"
        out.append((body, headers))
    return out


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict) -> int:
    conn.request("POST", path, body, headers)
    response = conn.getresponse()
    response.read()
    return response.status


def closed_client(port: int, path: str, requests: list, barrier: Any, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    barrier.wait()
    ok = 0
    for body, headers in requests:
        ok += _post(conn, path, body, headers) == 200
    out.put(ok)


def open_client(port: int, path: str, requests: list, rate: float, start: float, out: Any) -> None:
    """Send request i at ``start + i / rate``; latency counts from that scheduled time."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, ok = [], 0
    for i, (body, headers) in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ok += _post(conn, path, body, headers) == 200
        latencies.append(time.perf_counter() - due)
    out.put((ok, latencies))


def run_closed(port: int, path: str, requests: list, clients: int) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(clients + 1), ctx.Queue()
    share = [requests[i::clients] for i in range(clients)]
    procs = [ctx.Process(target=closed_client, args=(port, path, s, barrier, out)) for s in share]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    ok = sum(out.get() for _ in procs)
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    return len(requests) / elapsed, ok


def run_open(port: int, path: str, requests: list, rate: float, clients: int) -> tuple[list, int]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.perf_counter() + 2.0  # perf_counter is system-wide on Linux (CLOCK_MONOTONIC)
    share = [requests[i::clients] for i in range(clients)]
    procs = [
        ctx.Process(target=open_client, args=(port, path, s, rate / clients, start, out))
        for s in share
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return [lat for _, lats in results for lat in lats], sum(ok for ok, _ in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=None, help="closed-loop requests per kind")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--seconds", type=float, default=None, help="open-loop duration")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    total = args.requests or (1000 if args.quick else 10000)
    seconds = args.seconds or (3.0 if args.quick else 10.0)

    url = fresh_database(DB_NAME)
    env = service_env(url, REDIS, PREFIX)
    questline = QUESTLINE
    subprocess.run([questline, "db", "upgrade"], env=env, check=True, capture_output=True)
    import redis

    redis.Redis.from_url(REDIS).flushdb()

    from questline.db import Database
    from questline.tenants import create_tenant
    from webhooks.connections import create_connection

    db = Database(url)
    with db.session() as session:
        tenant, _ = create_tenant(session, "bench-webhooks")
        hub, hub_secret = create_connection(session, tenant.id, "hubspot", secret="bench-client")
        std, std_secret = create_connection(session, tenant.id, "standard")
        kinds = {"hubspot": (hub.public_id, hub_secret), "standard": (std.public_id, std_secret)}
        tenant_id = tenant.id
    db.dispose()

    port = free_port()
    server, logdir = start_serve(env, port, args.web_workers, "webhooks")
    print(f"server log: {logdir}/serve.log", flush=True)
    results: dict[str, Any] = {}
    try:
        acked = 0
        for kind, (public_id, secret) in kinds.items():
            path = f"/webhooks/{public_id}"
            full = f"http://127.0.0.1:{port}{path}"
            warm = signed_requests(kind, full, secret, "warm", 200)
            run_closed(port, path, warm, args.clients)
            acked += len(warm)
            closed = signed_requests(kind, full, secret, "closed", total)
            web0, pg0 = cpu_seconds(server.pid, url)
            rps, ok = run_closed(port, path, closed, args.clients)
            web1, pg1 = cpu_seconds(server.pid, url)
            acked += ok
            web_ms, pg_ms = (web1 - web0) * 1000 / total, (pg1 - pg0) * 1000 / total
            n = int(args.rate * seconds)
            lats, ok_open = run_open(port, path, signed_requests(kind, full, secret, "open", n),
                                     args.rate, args.clients)  # fmt: skip
            acked += ok_open
            results[kind] = {
                "closed_rps": round(rps), "closed_ok": ok, "closed_sent": total,
                "open_rate": args.rate, "open_sent": n, "open_ok": ok_open,
                "p50_ms": round(percentile(lats, 50) * 1000, 1),
                "p99_ms": round(percentile(lats, 99) * 1000, 1),
                "max_ms": round(max(lats) * 1000, 1),
                # CPU per request: the web workers (Flask, verify, parse) and PostgreSQL (store).
                "web_cpu_ms": round(web_ms, 2), "pg_cpu_ms": round(pg_ms, 2),
                # What two otherwise idle cores could sustain at that cost (an estimate).
                "est_rps_2_idle_cores": round(2000 / (web_ms + pg_ms)) if web_ms + pg_ms else None,
                "loadavg_1m": round(os.getloadavg()[0], 1),
            }  # fmt: skip
            print(kind, json.dumps(results[kind]), flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    with psycopg.connect(url) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM inbox_events WHERE tenant_id = %s", (tenant_id,)
        ).fetchone()[0]  # fmt: skip
    print(f"stored {stored} of {acked} acknowledged before the worker ran", flush=True)
    started = time.perf_counter()
    subprocess.run([questline, "worker", "--burst"], env=env, check=True, capture_output=True)
    with psycopg.connect(url) as conn:
        rows = dict(conn.execute(
            "SELECT status, count(*) FROM inbox_events WHERE tenant_id = %s GROUP BY status",
            (tenant_id,),
        ).fetchall())  # fmt: skip
    applied = rows.get("applied", 0)
    print(f"applied {applied} of {acked} acknowledged ({rows}); worker burst "
          f"{time.perf_counter() - started:.1f}s; lost {acked - applied}")  # fmt: skip
    return 0 if applied == acked else 1


if __name__ == "__main__":
    sys.exit(main())
