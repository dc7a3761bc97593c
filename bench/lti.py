"""Benchmark of LTI 1.3 launches: complete OIDC login + launch round trips on gunicorn.

Run on demand, never from the test suite::

    .venv/bin/python bench/lti.py             # about a minute on 2 cores
    .venv/bin/python bench/lti.py --quick     # smoke run

It recreates its own PostgreSQL database (``questline_bench_lti``) and Redis db 11, starts
``questline serve`` (gunicorn, 2 sync workers) as a subprocess, registers a platform whose JWKS
is served from this process on loopback, and then measures round trips. One round trip is what
a browser does: ``GET /lti/login`` (the tool checks the issuer and client, stores state and
nonce, answers 302 to the platform), the platform signs an id_token for that state and nonce
(done here in the client, RS256 with the platform's key, ~1 ms: the platform's work, counted in
the latency but not the tool's), then ``POST /lti/launch`` (full validation, player upsert,
course and membership, launch record, ``session.started`` stored in the inbox, RQ wake-up,
learner page). Every launch is a distinct learner visit with a fresh nonce.

* closed loop: client *processes* (spawned), each on a keep-alive connection, as fast as
  answers come back -> round trips/s, with per-trip latency;
* open loop: a fixed rate (default 150/s) whatever the server does, latency from each trip's
  *scheduled* start (no coordinated omission) -> p50/p99;
* the platform's JWKS fetches are counted: at most one per gunicorn worker is expected.
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
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from common import QUESTLINE, free_port, fresh_database, percentile, service_env, start_serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "questline_bench_lti"
PREFIX = "qlbenchlti"  # Redis key prefix and RQ queue of this benchmark
PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/11"  # db 11: no other bench uses (or flushes) it
CLIENT_ID = "bench-client"
DEPLOYMENT = "bench-deployment"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


def serve_jwks(jwks: dict[str, Any]) -> tuple[str, list[int], Any]:
    """The platform's key set on loopback, counting fetches."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    fetches = [0]

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        fetches[0] += 1
        return Response(json.dumps(jwks), content_type="application/json")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", fetches, server


def login_query(issuer: str, sub: str, tool: str) -> str:
    """The platform's third-party initiated login request, as a query string."""
    return urlencode(
        {
            "iss": issuer,
            "login_hint": sub,
            "target_link_uri": tool + "/lti/launch",
            "lti_message_hint": "link:rl-1",
            "client_id": CLIENT_ID,
            "lti_deployment_id": DEPLOYMENT,
        }
    )


def id_token(issuer: str, key: Any, kid: str, sub: str, nonce: str, tool: str) -> str:
    """What the platform signs for a learner's resource link launch (its work, not ours)."""
    import jwt

    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": sub,
        "iat": now,
        "exp": now + 300,
        "nonce": nonce,
        "name": f"Learner {sub}",
        "email": f"{sub}@bench.example",
        LTI + "deployment_id": DEPLOYMENT,
        LTI + "message_type": "LtiResourceLinkRequest",
        LTI + "version": "1.3.0",
        LTI + "roles": [LEARNER],
        LTI + "target_link_uri": tool + "/lti/launch",
        LTI + "resource_link": {"id": "rl-1", "title": "Questline"},
        LTI + "context": {"id": "course-1", "title": "Benchmarking 101"},
        LTI + "custom": {"widget": "level"},
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def round_trip(
    conn: http.client.HTTPConnection, issuer: str, key: Any, kid: str, sub: str, tool: str
) -> str:
    """One login + launch as a browser would do it; "" when the learner page came back, else
    which step answered what."""
    conn.request("GET", "/lti/login?" + login_query(issuer, sub, tool))
    response = conn.getresponse()
    response.read()
    if response.status != 302:
        return f"login {response.status}"
    cookie = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
    params = parse_qs(urlparse(response.getheader("Location") or "").query)
    token = id_token(issuer, key, kid, sub, params["nonce"][0], tool)
    body = urlencode({"id_token": token, "state": params["state"][0]})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    conn.request("POST", "/lti/launch", body, headers)
    response = conn.getresponse()
    response.read()
    return "" if response.status == 200 else f"launch {response.status}"


def client(mode: str, args: tuple[Any, ...], trips: int, rate: float, start: float, out: Any):
    from cryptography.hazmat.primitives import serialization

    port, issuer, pem, kid, tool, tag = args
    # Parse the platform's key once: loading a PEM costs more than a whole launch.
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    if mode == "closed":
        while time.perf_counter() < start:
            time.sleep(0.001)
    cpu_started = time.process_time()  # the round trips' CPU, not the interpreter's start-up
    for i in range(trips):
        due = start + i / rate if mode == "open" else time.perf_counter()
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            failure = round_trip(conn, issuer, key, kid, f"{tag}-{i % 300}", tool)
        except OSError as exc:  # a timeout or reset under overload: count it, carry on
            failure = type(exc).__name__
            conn.close()
        if failure:
            failures[failure] = failures.get(failure, 0) + 1
        latencies.append(time.perf_counter() - due)
    out.put(
        (
            trips - sum(failures.values()),
            latencies,
            time.perf_counter(),
            failures,
            time.process_time() - cpu_started,
        )
    )


def run(
    mode: str, shared: tuple[Any, ...], trips: int, clients: int, rate: float
) -> tuple[int, list[float], float, dict[str, int], float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.perf_counter() + 2.0  # perf_counter is system-wide on Linux (CLOCK_MONOTONIC)
    procs = [
        ctx.Process(
            target=client,
            args=(mode, (*shared, f"{mode}{c}"), trips // clients, rate / clients, start, out),
        )
        for c in range(clients)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    ended = max(r[2] for r in results)
    sent = (trips // clients) * clients
    failures: dict[str, int] = {}
    for r in results:
        for what, count in r[3].items():
            failures[what] = failures.get(what, 0) + count
    ok = sum(r[0] for r in results)
    if ok + sum(failures.values()) != sent:
        failures["unaccounted"] = sent - ok - sum(failures.values())
    client_cpu = sum(r[4] for r in results)
    return ok, [x for r in results for x in r[1]], ended - start, failures, client_cpu


def _group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every process in a process group (gunicorn's master and workers:
    ``questline serve`` runs in its own session), read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _postgres_cpu_seconds(url: str) -> float:
    """User + system CPU of every PostgreSQL backend connected to the bench database (read
    from /proc: the database runs on this machine), so its share of a round trip is known."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (DB_NAME,),
            )
        ]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def profile(
    env: dict[str, str], trips: int, issuer: str, pem: str, kid: str, fetches: list[int]
) -> int:
    """Round trips through the Flask test client in this process: the server's CPU per round
    trip (process time spent inside the two requests), the client's id_token signing apart,
    the PostgreSQL backends' CPU, statements per round trip, and a cProfile of the server."""
    import cProfile
    import pstats

    import jwt  # noqa: F401  (imported before timing)
    from cryptography.hazmat.primitives import serialization
    from sqlalchemy import event

    from questline import create_app
    from questline.settings import load_settings

    app = create_app(load_settings(env))
    database = app.extensions["questline"].db
    statements = [0]
    event.listen(
        database.engine,
        "before_cursor_execute",
        lambda *a: statements.__setitem__(0, statements[0] + 1),
    )
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    # No cookie jar: like the HTTP bench, each launch carries only its own login's cookie
    # (a jar would grow by one state cookie per login and cost the test client, not the app).
    browser = app.test_client(use_cookies=False)
    tool = "http://localhost"
    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
    totals = {"server_cpu": 0.0, "server_wall": 0.0, "client_cpu": 0.0, "widget_cpu": 0.0}

    # The learner page is the widgets issue's code: time it apart, so the LTI share is known.
    import widgets.render

    render_widget = widgets.render.render_widget

    def timed_render(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return render_widget(*args, **kwargs)
        finally:
            totals["widget_cpu"] += time.process_time() - started

    widgets.render.render_widget = timed_render

    def one(sub: str, mode: str) -> None:
        """One round trip; ``mode`` is "warm" (not counted), "time" (CPU and wall counted)
        or "profile" (the two requests under cProfile, which slows Python down ~2x)."""
        c0, w0 = time.process_time(), time.perf_counter()
        if mode == "profile":
            profiler.enable()
        answer = browser.get("/lti/login?" + login_query(issuer, sub, tool))
        if mode == "profile":
            profiler.disable()
        c1, w1 = time.process_time(), time.perf_counter()
        assert answer.status_code == 302, answer.get_data(as_text=True)
        params = parse_qs(urlparse(answer.headers["Location"]).query)
        cookie = answer.headers["Set-Cookie"].split(";", 1)[0]
        token = id_token(issuer, key, kid, sub, params["nonce"][0], tool)
        c2, w2 = time.process_time(), time.perf_counter()
        if mode == "profile":
            profiler.enable()
        answer = browser.post(
            "/lti/launch",
            data={"id_token": token, "state": params["state"][0]},
            headers={"Cookie": cookie},
        )
        if mode == "profile":
            profiler.disable()
        c3, w3 = time.process_time(), time.perf_counter()
        assert answer.status_code == 200, answer.get_data(as_text=True)
        if mode == "time":
            totals["server_cpu"] += (c1 - c0) + (c3 - c2)
            totals["server_wall"] += (w1 - w0) + (w3 - w2)
            totals["client_cpu"] += c2 - c1

    def timed(subs: list[str]) -> dict[str, float]:
        totals.update(server_cpu=0.0, server_wall=0.0, client_cpu=0.0, widget_cpu=0.0)
        statements[0] = 0
        pg_before = _postgres_cpu_seconds(f"{PG}/{DB_NAME}")
        for sub in subs:
            one(sub, "time")
        pg_cpu = _postgres_cpu_seconds(f"{PG}/{DB_NAME}") - pg_before
        return {
            "server_cpu_ms": round(totals["server_cpu"] / len(subs) * 1000, 2),
            "of_which_widget_page_cpu_ms": round(totals["widget_cpu"] / len(subs) * 1000, 2),
            "server_wall_ms": round(totals["server_wall"] / len(subs) * 1000, 2),
            "client_signing_cpu_ms": round(totals["client_cpu"] / len(subs) * 1000, 2),
            "postgres_cpu_ms": round(pg_cpu / len(subs) * 1000, 2),
            "statements": round(statements[0] / len(subs), 1),
        }

    for i in range(50):  # imports, pool, JWKS, templates, caches
        one(f"warm-{i}", "warm")
    learners = [f"learner-{i}" for i in range(trips)]
    first = timed(learners)  # each learner's first launch: the player is created
    again = timed(learners)  # returning learners: the common case
    for sub in learners:
        one(sub, "profile")
    figures = {"trips": trips, "first_visit": first, "returning": again, "jwks_fetches": fetches[0]}
    print("profile", json.dumps(figures), flush=True)
    dump = Path(tempfile.gettempdir()) / "questline-bench-lti.prof"
    profiler.dump_stats(dump)
    print(f"cProfile (CPU time) of the server side saved to {dump}")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    database.dispose()
    return 0


def setup_platform(url: str) -> tuple[str, dict[str, Any], str, list[int], Any]:
    """A tenant and a registered platform whose JWKS is served from this process."""
    from lti.registrations import register_platform
    from questline.db import Database
    from questline.tenants import create_tenant
    from tests.lti.platform import new_private_key, public_pem

    key = new_private_key()
    from lti1p3platform.registration import Registration

    jwk = Registration.get_jwk(public_pem(key))
    jwks_url, fetches, jwks_server = serve_jwks({"keys": [jwk]})
    issuer = jwks_url  # the platform's issuer: its loopback address
    db = Database(url)
    with db.session() as session:
        tenant, _ = create_tenant(session, f"bench-lti-{uuid.uuid4().hex[:6]}")
        register_platform(
            session,
            tenant_id=tenant.id,
            issuer=issuer,
            client_id=CLIENT_ID,
            deployment_ids=[DEPLOYMENT],
            auth_login_url=issuer + "/auth",
            auth_token_url=issuer + "/token",
            key_set_url=jwks_url + "/jwks",
        )
    db.dispose()
    return key, jwk, issuer, fetches, jwks_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trips", type=int, default=None, help="closed-loop round trips")
    parser.add_argument("--rate", type=float, default=150.0, help="open-loop round trips/s")
    parser.add_argument("--seconds", type=float, default=None, help="open-loop duration")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="no gunicorn: N round trips in-process (Flask test client) under cProfile, with "
        "the server's CPU time per round trip measured apart from the client's token signing",
    )
    args = parser.parse_args()
    trips = args.trips or (400 if args.quick else 3000)
    trips -= trips % args.clients  # every client makes the same number of round trips
    seconds = args.seconds or (3.0 if args.quick else 10.0)

    url = fresh_database(DB_NAME)
    env = service_env(url, REDIS, PREFIX)
    questline = QUESTLINE
    subprocess.run([questline, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([questline, "lti", "keys", "rotate"], env=env, check=True, capture_output=True)
    import redis

    redis.Redis.from_url(REDIS).flushdb()

    key, jwk, issuer, fetches, jwks_server = setup_platform(url)
    if args.profile:
        try:
            return profile(env, args.profile, issuer, key, jwk["kid"], fetches)
        finally:
            jwks_server.shutdown()

    port = free_port()
    tool = f"http://127.0.0.1:{port}"
    server, logdir = start_serve(env, port, args.web_workers, "lti")
    shared = (port, issuer, key, jwk["kid"], tool)
    failed = False
    try:
        run("closed", shared, 100, args.clients, 0)  # warm: imports, pools, JWKS
        server_cpu = _group_cpu_seconds(server.pid)
        pg_cpu = _postgres_cpu_seconds(url)
        ok, lats, elapsed, failures, client_cpu = run("closed", shared, trips, args.clients, 0)
        server_cpu = _group_cpu_seconds(server.pid) - server_cpu
        pg_cpu = _postgres_cpu_seconds(url) - pg_cpu
        closed = {
            "trips": trips, "ok": ok, "failures": failures, "per_s": round(len(lats) / elapsed),
            "p50_ms": round(percentile(lats, 50) * 1000, 1),
            "p99_ms": round(percentile(lats, 99) * 1000, 1),
            # CPU per round trip: gunicorn (master + workers), PostgreSQL backends, clients.
            "server_cpu_ms": round(server_cpu / trips * 1000, 2),
            "postgres_cpu_ms": round(pg_cpu / trips * 1000, 2),
            "client_cpu_ms": round(client_cpu / trips * 1000, 2),
        }  # fmt: skip
        print("closed", json.dumps(closed), flush=True)
        n = int(args.rate * seconds)
        n -= n % args.clients
        ok_open, lats, _, failures, _ = run("open", shared, n, args.clients, args.rate)
        opened = {
            "rate": args.rate, "trips": n, "ok": ok_open, "failures": failures,
            "p50_ms": round(percentile(lats, 50) * 1000, 1),
            "p99_ms": round(percentile(lats, 99) * 1000, 1),
            "max_ms": round(max(lats) * 1000, 1),
        }  # fmt: skip
        print("open", json.dumps(opened), flush=True)
        print(f"platform JWKS fetched {fetches[0]} times ({args.web_workers} gunicorn workers)")
        failed = ok != trips or ok_open != n
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        jwks_server.shutdown()
    if failed:
        print(f"some round trips failed; see {logdir}/serve.log")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
