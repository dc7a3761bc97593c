"""The database handle: one engine and session factory per app, built from settings.

SQLite (the embedded default) and PostgreSQL (production) are both first-class; the few places
where they differ (upsert, row locks) ask ``Database.dialect`` rather than guessing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Integer, create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import JSON

# Big integer ids in PostgreSQL; SQLite only auto-increments a plain INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def json_type() -> Any:
    """JSONB in PostgreSQL (indexable, compact), JSON text elsewhere."""
    from sqlalchemy.dialects.postgresql import JSONB

    return JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """The one declarative base every model shares."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the options each backend needs (pool sizes, SQLite pragmas)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # Hot statements take id lists as one array parameter and psycopg prepares them after a
    # few runs; a generic plan cannot see the array, and measured choosing to scan a tenant's
    # whole ledger instead of its (tenant, player) index. Custom plans cost little here.
    kwargs.setdefault("connect_args", {"options": "-c plan_cache_mode=force_custom_plan"})
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class DirectWriter:
    """One plain psycopg connection per thread, in autocommit, for the ingest hot path.

    Measured: a one-statement insert through SQLAlchemy's pool (checkout, pre-ping, reset)
    costs about 2.3 times the client CPU of the same statement on a held psycopg connection,
    and ingest is the request every source sends. The connection is per thread and per
    process (gunicorn forks after loading the app), and a connection found dead is replaced
    and the statement sent once more. Statements sent here must be idempotent (the inbox
    insert is: ON CONFLICT DO NOTHING), since a reply lost with its connection is retried.
    """

    dialect_name = "postgresql"

    def __init__(self, url: str) -> None:
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._local = threading.local()
        # Every connection opened, by owning thread, so dispose() closes them all and a dead
        # thread's connection is closed instead of left to the garbage collector.
        self._lock = threading.Lock()
        self._opened: list[tuple[threading.Thread, int, psycopg.Connection[Any]]] = []
        self._group: tuple[int, Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or self._local.pid != os.getpid():
            conn = psycopg.connect(self._conninfo, autocommit=True)
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._close_where(lambda thread, pid: not thread.is_alive())
                self._opened.append((threading.current_thread(), os.getpid(), conn))
        return conn

    def _close_where(self, doomed: Any) -> None:
        keep = []
        for thread, pid, conn in self._opened:
            if pid == os.getpid() and doomed(thread, pid):
                conn.close()
            else:  # kept, never collected: an inherited one's socket is the parent's to close
                keep.append((thread, pid, conn))
        self._opened = keep

    def fetchall(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows, reconnecting once if the connection died."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except psycopg.OperationalError:
                if not conn.closed and not conn.broken:
                    raise  # the server refused the statement: not a connection problem
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def group(self) -> Any:
        """This process's ``GroupInserter`` (made after a fork, never inherited): concurrent
        inbox inserts of its threads share statements and commits."""
        from questline.group_insert import GroupInserter

        inserter = self._group
        if inserter is None or inserter[0] != os.getpid():
            with self._lock:
                inserter = self._group
                if inserter is None or inserter[0] != os.getpid():
                    inserter = self._group = (os.getpid(), GroupInserter(self))
        return inserter[1]

    def close(self) -> None:
        """Close every connection this process opened (all threads)."""
        with self._lock:
            self._close_where(lambda thread, pid: True)
        self._local = threading.local()


class Database:
    """Engine plus session factory. Tests may bind the factory to one connection instead."""

    def __init__(self, url: str, *, bind: Engine | Connection | None = None) -> None:
        self.url = url
        self.engine = make_engine(url) if bind is None else None
        target = bind if bind is not None else self.engine
        self.sessions = sessionmaker(
            bind=target,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint"
            if isinstance(bind, Connection)
            else "conditional_savepoint",
        )
        self.dialect = (target.dialect if target is not None else None).name  # type: ignore[union-attr]
        self.direct = DirectWriter(url) if bind is None and self.dialect == "postgresql" else None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction that commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection | DirectWriter]:
        """Where each statement commits by itself: a one-statement write costs one round trip,
        with no BEGIN and COMMIT around it. On PostgreSQL that is the thread's DirectWriter.
        Bound to a test's connection, it joins that connection's transaction (a savepoint)."""
        if self.direct is not None:
            yield self.direct
            return
        if self.engine is None:
            with self.session() as session:
                yield session.connection()
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        from sqlalchemy import text

        with self.sessions() as session:
            session.execute(text("SELECT 1"))

    def dispose(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        if self.direct is not None:
            self.direct.close()


def pairs(rows: Any) -> dict[Any, Any]:
    """A two-column result as a dict (``dict(result)`` would treat a Result as a mapping)."""
    return {key: value for key, value in rows}
