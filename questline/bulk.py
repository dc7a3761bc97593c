"""Many-row writes as one statement with one parameter, for the hot paths on PostgreSQL.

SQLAlchemy's ``insertmanyvalues`` renders a batch of 500 rows as a statement of 500 VALUES
tuples; psycopg then re-parses that (uncacheable, tens of KB) SQL text on every execute, which
measured as the largest single cost of applying a batch. Here the rows travel as one JSON
document unpacked by ``jsonb_to_recordset``: the SQL text is small and constant (prepared once
per connection) and the client only runs ``json.dumps``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Table, Text, any_, bindparam, cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} in a bulk row")


@lru_cache(maxsize=64)
def _statement(
    table: Table, columns: tuple[str, ...], returning: tuple[str, ...], dialect: Dialect
) -> str:
    spec = ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in columns)
    names = ", ".join(columns)
    sql = (
        f"INSERT INTO {table.name} ({names}) SELECT {names} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS u({spec}) ON CONFLICT DO NOTHING"
    )
    if returning:
        sql += " RETURNING " + ", ".join(returning)
    return sql


def insert_ignore_returning(
    conn: Connection, table: Table, rows: list[dict[str, Any]], returning: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """INSERT every row, skip those violating a unique constraint, return ``returning`` of the
    inserted ones. PostgreSQL only; every row must have the same keys."""
    if not rows:
        return []
    columns = tuple(rows[0])
    sql = _statement(table, columns, returning, conn.dialect)
    document = json.dumps(rows, separators=(",", ":"), default=_default)
    return [tuple(r) for r in conn.exec_driver_sql(sql, (document,))]


@lru_cache(maxsize=64)
def _update_statement(
    table: Table, columns: tuple[str, ...], key: str, increments: frozenset[str], dialect: Dialect
) -> str:
    quote = dialect.identifier_preparer.quote
    spec = ", ".join(f"{quote(c)} {table.c[c].type.compile(dialect=dialect)}" for c in columns)
    sets = ", ".join(
        f"{quote(c)} = t.{quote(c)} + u.{quote(c)}"
        if c in increments
        else f"{quote(c)} = u.{quote(c)}"
        for c in columns
        if c != key
    )
    return (
        f"UPDATE {quote(table.name)} AS t SET {sets} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS u({spec}) WHERE t.{quote(key)} = u.{quote(key)}"
    )


def update_rows(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    key: str = "id",
    increments: frozenset[str] = frozenset(),
) -> None:
    """UPDATE many rows, each to its own values, in one statement (PostgreSQL only). Columns in
    ``increments`` are added to instead of set. Every row must have the same keys."""
    if not rows:
        return
    sql = _update_statement(table, tuple(rows[0]), key, increments, conn.dialect)
    conn.exec_driver_sql(sql, (json.dumps(rows, separators=(",", ":"), default=_default),))


def id_in(column: Any, ids: list[int], postgres: bool) -> ColumnElement[bool]:
    """``column IN ids`` as ``column = ANY(%s::bigint[])`` on PostgreSQL: one parameter and a
    constant SQL text (prepared once per connection), where an IN-list renders, and psycopg
    re-parses, one placeholder per id on every execute. SQLite keeps the IN-list."""
    if postgres:
        # Sent as the array's text form: psycopg dumps a list element by element in Python,
        # which measured slower than the server parsing '{1,2,3}'.
        literal = "{" + ",".join(str(int(i)) for i in ids) + "}"
        return column == any_(cast(bindparam(None, literal, type_=Text), ARRAY(BigInteger)))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]


@lru_cache(maxsize=64)
def _upsert_add_statement(
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    add: str,
    returning: tuple[str, ...],
    dialect: Dialect,
) -> str:
    spec = ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in columns)
    names = ", ".join(columns)
    return (
        f"INSERT INTO {table.name} ({names}) SELECT {names} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS u({spec}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {add} = {table.name}.{add} + "
        f"EXCLUDED.{add} RETURNING {', '.join(returning)}"
    )


def upsert_add_returning(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    conflict: tuple[str, ...],
    add: str,
    returning: tuple[str, ...],
) -> list[tuple[Any, ...]]:
    """INSERT each row, or add its ``add`` column to the existing row's (a running total), in
    one statement; return ``returning`` of every row written (PostgreSQL only). Rows must not
    repeat a conflict key within one call."""
    if not rows:
        return []
    sql = _upsert_add_statement(table, tuple(rows[0]), conflict, add, returning, conn.dialect)
    document = json.dumps(rows, separators=(",", ":"), default=_default)
    return [tuple(r) for r in conn.exec_driver_sql(sql, (document,))]
