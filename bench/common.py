"""What the HTTP benchmarks share: a fresh database, the service's environment, a gunicorn
started and waited for, a free port and percentiles. Imported as ``common`` by scripts run
as ``python bench/<name>.py`` (the script's folder is on ``sys.path``)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
QUESTLINE = str(ROOT / ".venv" / "bin" / "questline")
PG = "postgresql://postgres@127.0.0.1:5432"


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(name: str) -> str:
    """Drop and recreate ``name``; its URL. A benchmark never reuses another run's rows."""
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def service_env(database_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    """The environment for ``questline`` subprocesses: own Redis prefix and queue, quiet logs."""
    return {
        **os.environ,
        "QUESTLINE_DATABASE_URL": database_url,
        "QUESTLINE_REDIS_URL": redis_url,
        "QUESTLINE_REDIS_PREFIX": prefix,
        "QUESTLINE_QUEUE_NAME": prefix,
        "QUESTLINE_LOG_LEVEL": "WARNING",
        "QUESTLINE_SECRET_KEY": "bench",
    }


def start_serve(
    env: dict[str, str], port: int, web_workers: int, tag: str
) -> subprocess.Popen[bytes]:
    """``questline serve`` in its own session (stop it with ``os.killpg``), once it accepts
    connections and has had a second to load; with the folder its log goes to."""
    logdir = Path(tempfile.mkdtemp(prefix=f"questline-bench-{tag}-"))
    server = subprocess.Popen(
        [QUESTLINE, "serve", "--port", str(port), "--workers", str(web_workers)],
        env=env,
        stdout=(logdir / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1.0)
    return server, logdir
