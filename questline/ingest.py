"""Turn a request's items into inbox rows: validate each, store the valid ones durably.

One bad item never costs the others: each is validated on its own and the report says which
were accepted, which were duplicates (already stored under that id) and which were rejected
and why. Storage is one multi-row INSERT ... ON CONFLICT DO NOTHING, so a repeated id is
detected by the database, not by a racy read.

On PostgreSQL the whole request is one statement (``INSERT ... SELECT FROM unnest(arrays)``), so
a batch of 1,000 costs one round trip and no ORM bookkeeping; ingest is the hot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.events import ActivityEvent, InvalidEvent, parse_event
from questline.db import DirectWriter
from questline.group_insert import insert_rows
from questline.models import InboxEvent


@dataclass
class Rejected:
    index: int
    id: Any
    errors: list[dict[str, str]]


@dataclass
class IngestReport:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    inbox_ids: list[int] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"index": r.index, "id": r.id, "errors": r.errors} for r in self.rejected],
        }


def upsert_ignore(session: Session, model: Any) -> Any:
    """An INSERT that skips rows violating a unique constraint, in the session's dialect."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(model).on_conflict_do_nothing()
    return sa_insert(model)  # pragma: no cover - only PostgreSQL and SQLite are supported


_NUL_MESSAGE = "must not contain the NUL character (\\u0000)"


def _nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides in a JSON value, if anywhere: PostgreSQL text cannot hold it."""
    if isinstance(value, str):
        return (path or "(event)") if "\x00" in value else None
    if isinstance(value, dict):
        children: list[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        children = [(str(i), v) for i, v in enumerate(value)]
    else:
        return None
    for key, inner in children:
        where = f"{path}.{key}" if path else key
        if "\x00" in key:
            return where
        found = _nul_path(inner, where)
        if found is not None:
            return found
    return None


def validate_items(
    items: list[Any], report: IngestReport, *, nul_free: bool = False
) -> list[tuple[ActivityEvent, Any]]:
    """Parse every item; record the invalid ones in ``report`` and return the valid ones.
    ``nul_free``: the caller knows no string in ``items`` holds a NUL (skip looking)."""
    valid: list[tuple[ActivityEvent, Any]] = []
    for index, item in enumerate(items):
        item_id = item.get("id") if isinstance(item, dict) else None
        nul = None if nul_free else _nul_path(item)
        if nul is not None:
            error = {"field": nul, "message": _NUL_MESSAGE}
            report.rejected.append(Rejected(index, item_id, [error]))
            continue
        try:
            valid.append((parse_event(item), item))
        except InvalidEvent as exc:
            report.rejected.append(Rejected(index, item_id, [e.as_dict() for e in exc.errors]))
    return valid


def store_events(
    target: Session | Connection | DirectWriter,
    tenant_id: int,
    events: list[tuple[ActivityEvent, Any]],
    received_at: datetime,
    report: IngestReport,
    *,
    nul_free: bool = False,
) -> None:
    """Insert the events into the inbox; fill ``report`` with accepted and duplicate ids.

    ``target`` is the caller's session (the insert joins its transaction) or a connection
    or writer (``Database.autocommit()``, where the single statement commits on its own).
    ``nul_free``: the caller checked the request's bytes for NUL escapes (see ``api``)."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for index, (event, raw) in enumerate(events):
        key = (event.source, event.id)
        if key in seen:
            report.duplicates.append(event.id)
            continue
        canonical = event.to_dict()
        raw_text = raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"))
        # Adapters (webhooks, LTI) come here without validate_items: the last guard against a
        # NUL that PostgreSQL would refuse, failing every other row of the request with it.
        nul = (
            None if nul_free else _nul_path(canonical) or ("(raw)" if "\x00" in raw_text else None)
        )
        if nul is not None:
            error = {"field": nul, "message": _NUL_MESSAGE}
            report.rejected.append(Rejected(index, event.id, [error]))
            continue
        seen.add(key)
        rows.append(
            {
                "tenant_id": tenant_id,
                "source": event.source,
                "event_key": event.id,
                "event_type": event.type,
                "raw": raw_text,
                "canonical": canonical,
                "occurred_at": event.occurred_at,
                "received_at": received_at,
                "status": "pending",
                "attempts": 0,
            }
        )
    if not rows:
        return
    conn = target.connection() if isinstance(target, Session) else target
    if isinstance(conn, DirectWriter):  # concurrent requests share statements and commits
        result = conn.group().insert(tenant_id, received_at, rows)
    elif conn.dialect.name == "postgresql":  # the same one statement, in the caller's transaction
        result = insert_rows(conn, tenant_id, received_at, rows)
    else:
        insert = sqlite.insert(InboxEvent).on_conflict_do_nothing()
        result = conn.execute(
            insert.returning(InboxEvent.id, InboxEvent.source, InboxEvent.event_key), rows
        )
    inserted = {(src, key): inbox_id for inbox_id, src, key in result}
    # RETURNING with executemany can come back in any order: map back by (source, key).
    for row in rows:
        inbox_id = inserted.get((row["source"], row["event_key"]))
        if inbox_id is None:
            report.duplicates.append(row["event_key"])
        else:
            report.accepted.append(row["event_key"])
            report.inbox_ids.append(inbox_id)
            report.sources[row["source"]] = report.sources.get(row["source"], 0) + 1
