"""Test harness: real PostgreSQL and Redis, never mocks (STYLE 12).

The test database is created once per run and migrated to head with Alembic; each test runs in a
transaction rolled back at the end. Redis tests use their own database number, flushed around
each test. If either service is missing the run fails at once, loudly; nothing is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from questline import create_app
from questline.db import Database, make_engine
from questline.leaderboards import Leaderboards
from questline.migrate import upgrade
from questline.settings import Settings
from questline.tenants import create_tenant
from workers.context import Context
from workers.pipeline import Pipeline
from workers.queue import InlineDispatcher

ADMIN_URL = os.environ.get(
    "QUESTLINE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# One database and one Redis key space per run, so two runs on one machine never collide.
RUN_ID = f"{os.getpid()}"
TEST_DB = os.environ.get("QUESTLINE_TEST_DB_NAME", f"questline_test_{RUN_ID}")
REDIS_URL = os.environ.get("QUESTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REDIS_PREFIX = f"qltest{RUN_ID}"
QUEUE_NAME = f"questline-test-{RUN_ID}"


def _base(url: str) -> str:
    return url.rsplit("/", 1)[0]


def _admin() -> Engine:
    return create_engine(
        "postgresql+psycopg://" + ADMIN_URL.removeprefix("postgresql://"),
        isolation_level="AUTOCOMMIT",
    )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated test database, dropped afterwards. Fails the run if PostgreSQL is
    unreachable."""
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{TEST_DB}"'))
    except Exception as exc:  # pragma: no cover - the loud failure path
        pytest.exit(f"PostgreSQL is required for the tests and is not reachable: {exc}", 3)
    finally:
        admin.dispose()
    url = f"{_base(ADMIN_URL)}/{TEST_DB}"
    upgrade(url)
    yield url
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_server() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:  # pragma: no cover - the loud failure path
        pytest.exit(f"Redis is required for the tests and is not reachable: {exc}", 3)
    return client


def dead_redis() -> redis.Redis:
    """A client configured exactly as production's, pointed at a port where nothing listens."""
    from questline.redis_client import connect

    return connect(Settings(redis_url="redis://127.0.0.1:1/0"))


def _clear_run_keys(client: redis.Redis) -> None:
    """Delete this run's keys only (other runs may share the database)."""
    for pattern in (f"{REDIS_PREFIX}*", f"rq:*{QUEUE_NAME}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def redis_client(redis_server: redis.Redis) -> Iterator[redis.Redis]:
    _clear_run_keys(redis_server)
    yield redis_server
    _clear_run_keys(redis_server)


@pytest.fixture
def db(pg_engine: Engine, pg_url: str) -> Iterator[Database]:
    """A Database whose every session joins one outer transaction, rolled back after the test."""
    connection = pg_engine.connect()
    outer = connection.begin()
    yield Database(pg_url, bind=connection)
    outer.rollback()
    connection.close()


@pytest.fixture
def committed_db(pg_url: str) -> Iterator[Database]:
    """A Database that really commits, for tests of concurrency across connections.

    Tests using it work inside their own tenants (created with ``make_tenant``) and those tenants
    are deleted afterwards (cascading to every row they own).
    """
    database = Database(pg_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(pg_url: str) -> Settings:
    return Settings(
        database_url=pg_url,
        redis_url=REDIS_URL,
        redis_prefix=REDIS_PREFIX,
        queue_name=QUEUE_NAME,
        secret_key="test-secret",
        max_body_bytes=256 * 1024,
        max_batch=1000,
        job_batch_size=100,
        drain_linger_seconds=0.2,
        drain_window_seconds=0.01,
        max_attempts=3,
        retry_base_seconds=1,
        log_json=True,
    )


def make_context(settings: Settings, database: Database, client: redis.Redis) -> Context:
    """A context on real PostgreSQL and Redis whose dispatcher runs the pipeline inline."""
    boards = Leaderboards(client, settings.redis_prefix)
    pipeline = Pipeline(database, boards, settings)
    return Context(settings, database, client, boards, pipeline, InlineDispatcher(pipeline))


@pytest.fixture
def ctx(settings: Settings, db: Database, redis_client: redis.Redis) -> Context:
    return make_context(settings, db, redis_client)


@pytest.fixture
def app(settings: Settings, ctx: Context) -> Flask:
    return create_app(settings, context=ctx)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass(frozen=True)
class TenantHandle:
    id: int
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


_counter = iter(range(1, 10**9))


def new_tenant(database: Database, name: str | None = None, timezone: str = "UTC") -> TenantHandle:
    with database.session() as session:
        tenant, key = create_tenant(
            session, name or f"tenant-{os.getpid()}-{next(_counter)}", timezone=timezone
        )
        return TenantHandle(tenant.id, key)


@pytest.fixture
def tenant(db: Database) -> TenantHandle:
    return new_tenant(db, "Test School")


@pytest.fixture
def other_tenant(db: Database) -> TenantHandle:
    return new_tenant(db, "Other School")


def event(
    event_id: str,
    *,
    type: str = "lesson.completed",
    actor: str = "learner-1",
    course: str | None = "course-1",
    score: float | None = None,
    at: str = "2026-11-20T10:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    """A valid API event with sensible defaults; override any field."""
    out: dict[str, Any] = {
        "id": event_id,
        "type": type,
        "actor": {"id": actor, "name": actor.title()},
        "object": {"id": f"obj-{event_id}", "type": "lesson"},
        "occurred_at": at,
    }
    if course is not None:
        out["context"] = {"course": course}
    if score is not None:
        out["result"] = {"score": score}
    out.update(extra)
    return out
