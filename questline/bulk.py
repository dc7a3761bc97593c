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

from sqlalchemy import Table
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
