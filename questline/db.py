"""The database handle: one engine and session factory per app, built from settings.

SQLite (the embedded default) and PostgreSQL (production) are both first-class; the few places
where they differ (upsert, row locks) ask ``Database.dialect`` rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import BigInteger, Integer, create_engine, event
from sqlalchemy.engine import Connection, Engine
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
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


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

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction that commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which each statement commits by itself: a one-statement write costs
        one round trip, with no BEGIN and COMMIT around it. Bound to a test's connection, it
        joins that connection's transaction instead (in a savepoint)."""
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


def pairs(rows: Any) -> dict[Any, Any]:
    """A two-column result as a dict (``dict(result)`` would treat a Result as a mapping)."""
    return {key: value for key, value in rows}
