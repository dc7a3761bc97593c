"""Turn a request's items into inbox rows: validate each, store the valid ones durably.

One bad item never costs the others: each is validated on its own and the report says which
were accepted, which were duplicates (already stored under that id) and which were rejected
and why. Storage is one multi-row INSERT ... ON CONFLICT DO NOTHING, so a repeated id is
detected by the database, not by a racy read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.events import ActivityEvent, InvalidEvent, parse_event
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


def validate_items(items: list[Any], report: IngestReport) -> list[tuple[ActivityEvent, Any]]:
    """Parse every item; record the invalid ones in ``report`` and return the valid ones."""
    valid: list[tuple[ActivityEvent, Any]] = []
    for index, item in enumerate(items):
        try:
            valid.append((parse_event(item), item))
        except InvalidEvent as exc:
            item_id = item.get("id") if isinstance(item, dict) else None
            report.rejected.append(Rejected(index, item_id, [e.as_dict() for e in exc.errors]))
    return valid


def store_events(
    session: Session,
    tenant_id: int,
    events: list[tuple[ActivityEvent, Any]],
    received_at: datetime,
    report: IngestReport,
) -> None:
    """Insert the events into the inbox; fill ``report`` with accepted and duplicate ids."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for event, raw in events:
        key = (event.source, event.id)
        if key in seen:
            report.duplicates.append(event.id)
            continue
        seen.add(key)
        rows.append(
            {
                "tenant_id": tenant_id,
                "source": event.source,
                "event_key": event.id,
                "event_type": event.type,
                "raw": raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":")),
                "canonical": event.to_dict(),
                "occurred_at": event.occurred_at,
                "received_at": received_at,
                "status": "pending",
                "attempts": 0,
            }
        )
    if not rows:
        return
    stmt = upsert_ignore(session, InboxEvent).returning(
        InboxEvent.id, InboxEvent.source, InboxEvent.event_key
    )
    inserted = {(src, key): inbox_id for inbox_id, src, key in session.execute(stmt, rows)}
    # RETURNING with executemany can come back in any order: map back by (source, key).
    for row in rows:
        inbox_id = inserted.get((row["source"], row["event_key"]))
        if inbox_id is None:
            report.duplicates.append(row["event_key"])
        else:
            report.accepted.append(row["event_key"])
            report.inbox_ids.append(inbox_id)
            report.sources[row["source"]] = report.sources.get(row["source"], 0) + 1
