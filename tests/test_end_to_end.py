"""Real processes: ``questline serve`` (gunicorn) and ``questline worker`` (RQ), over HTTP.

One test runs the production shape on PostgreSQL and Redis; one runs the embedded default
(SQLite, Redis in-process, jobs inline) exactly as the README's quick start does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import QUEUE_NAME, REDIS_PREFIX, REDIS_URL, event

QUESTLINE = str(Path(sys.executable).with_name("questline"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """Run a command in its own process group, output to a temp file; always stop it."""
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            args, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        proc.output = output  # type: ignore[attr-defined]
        try:
            yield proc
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.output.seek(0)
            raise AssertionError(f"server exited: {proc.output.read().decode()}")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [QUESTLINE, *args], env=env, check=True, capture_output=True, text=True, timeout=60
    ).stdout


def test_gunicorn_and_rq_worker_on_postgres_and_redis(pg_url, redis_client):
    env = {
        **os.environ,
        "QUESTLINE_DATABASE_URL": pg_url,
        "QUESTLINE_REDIS_URL": REDIS_URL,
        "QUESTLINE_REDIS_PREFIX": REDIS_PREFIX,
        "QUESTLINE_LOG_LEVEL": "WARNING",
        "QUESTLINE_QUEUE_NAME": QUEUE_NAME,
    }
    name = f"e2e-{os.getpid()}-{time.time_ns()}"
    key = cli(env, "tenants", "create", name).split("store it now): ")[1].strip()
    auth = {"Authorization": f"Bearer {key}"}
    port, worker_metrics = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env["QUESTLINE_WORKER_METRICS_ADDRESS"] = f"127.0.0.1:{worker_metrics}"
    try:
        with (
            process([QUESTLINE, "serve", "--port", str(port)], env) as web,
            process([QUESTLINE, "worker"], env),
        ):
            wait_healthy(base, web)
            batch = [event(f"b{i}", actor=f"p{i % 4}") for i in range(200)]
            assert (
                requests.post(f"{base}/api/v1/events", json=batch, headers=auth).status_code == 202
            )
            for i in range(20):
                single = event(f"s{i}", actor="p0", type="course.completed")
                assert (
                    requests.post(f"{base}/api/v1/events", json=single, headers=auth).status_code
                    == 202
                )

            def board_complete() -> bool:
                data = requests.get(
                    f"{base}/api/v1/leaderboards/tenant?limit=10", headers=auth
                ).json()
                return sum(e["xp"] for e in data["entries"]) == 200 * 10 + 20 * 100

            wait_for(board_complete)
            top = requests.get(f"{base}/api/v1/leaderboards/tenant", headers=auth).json()
            assert top["entries"][0]["display_name"] == "P0"
            assert top["entries"][0]["xp"] == 50 * 10 + 2000
            metrics = requests.get(f"{base}/metrics").text
            assert 'questline_inbox_events{status="pending"} 0' in metrics
            assert "questline_events_received_total" in metrics
            # The worker observes its metrics just after writing the boards: poll briefly.
            wait_for(
                lambda: (
                    "questline_event_latency_seconds_count 220.0"
                    in requests.get(f"http://127.0.0.1:{worker_metrics}/metrics").text
                )
            )
            worker_text = requests.get(f"http://127.0.0.1:{worker_metrics}/metrics").text
            assert "questline_events_applied_total 220.0" in worker_text
            health = requests.get(f"{base}/healthz").json()
            assert health["database"]["dialect"] == "postgresql"
            assert health["redis"] == {"ok": True, "embedded": False}
    finally:
        from sqlalchemy import delete

        from questline.db import Database
        from questline.models import Tenant

        database = Database(pg_url)
        with database.session() as session:
            session.execute(delete(Tenant).where(Tenant.name == name))
        database.dispose()


def test_embedded_serve_is_one_whole_questline(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_")}
    env.update(
        {
            "QUESTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}",
            "QUESTLINE_LOG_LEVEL": "WARNING",
        }
    )
    cli(env, "db", "upgrade")
    key = cli(env, "tenants", "create", "Solo").split("store it now): ")[1].strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with process([QUESTLINE, "serve", "--port", str(port)], env) as web:
        wait_healthy(base, web)
        auth = {"Authorization": f"Bearer {key}"}
        response = requests.post(
            f"{base}/api/v1/events", json=event("e1", actor="ann"), headers=auth
        )
        assert response.status_code == 202
        # Jobs inline: applied by the time the request returns.
        board = requests.get(f"{base}/api/v1/leaderboards/tenant", headers=auth).json()
        assert [(e["display_name"], e["xp"]) for e in board["entries"]] == [("Ann", 10)]
        assert requests.get(f"{base}/healthz").json()["redis"]["embedded"] is True
