"""Inbox inserts from concurrent requests, combined into one statement and one commit.

A durable single-event request costs a statement, a commit and its WAL flush, and most of its
wall time is spent waiting for the flush. Under load, a gunicorn worker's threads each wait for
their own. Here the first thread to arrive leads: it takes every row queued so far, inserts them
all in one statement (one commit, one flush), hands each thread its answer, and the next waiting
thread leads the rows that queued meanwhile. Alone, a request pays nothing extra (it leads its
own one-row batch); under load, rows share commits and the client sends one statement for many.

Each caller still returns only after its rows are committed, so "durable before acknowledged"
holds. A batch the database refuses as a whole is retried item by item, so one bad item costs no
other request its rows.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from questline.db import DirectWriter

Row = dict[str, Any]
Inserted = tuple[int, str, str]  # inbox id, source, event key

# The most rows one combined statement carries; a request of up to max_batch (1,000) events
# always fits in one, and a queue beyond this waits for the next leader.
MAX_ROWS = 5000

_INSERT = """
INSERT INTO inbox_events
    (tenant_id, source, event_key, event_type, raw, canonical, occurred_at, received_at,
     status, attempts)
SELECT u.tenant_id, u.source, u.event_key, u.event_type, u.raw, u.canonical, u.occurred_at,
       u.received_at, 'pending', 0
FROM jsonb_to_recordset(%s::jsonb)
     AS u(tenant_id bigint, source text, event_key text, event_type text, raw text,
          canonical jsonb, occurred_at timestamptz, received_at timestamptz)
ON CONFLICT ON CONSTRAINT uq_inbox_event DO NOTHING
RETURNING id, tenant_id, source, event_key
"""


@dataclass
class _Request:
    tenant_id: int
    received_at: datetime
    rows: list[Row]
    done: bool = False
    result: list[Inserted] = field(default_factory=list)
    error: BaseException | None = None


def _document(requests: list[_Request]) -> str:
    return json.dumps(
        [
            {
                "tenant_id": request.tenant_id,
                "source": row["source"],
                "event_key": row["event_key"],
                "event_type": row["event_type"],
                "raw": row["raw"],
                "canonical": row["canonical"],
                "occurred_at": row["occurred_at"].isoformat(),
                "received_at": request.received_at.isoformat(),
            }
            for request in requests
            for row in request.rows
        ],
        separators=(",", ":"),
    )


def insert_rows(
    conn: Connection, tenant_id: int, received_at: datetime, rows: list[Row]
) -> list[Inserted]:
    """The same insert for one request on a SQLAlchemy connection (a session's transaction)."""
    returned = conn.exec_driver_sql(_INSERT, (_document([_Request(tenant_id, received_at, rows)]),))
    return [(inbox_id, source, key) for inbox_id, _tenant, source, key in returned]


class GroupInserter:
    """Combine concurrent inbox inserts of one process (see the module docstring)."""

    def __init__(self, writer: DirectWriter) -> None:
        self.writer = writer
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._leading = False
        # Counters for tests and metrics: statements sent, requests served.
        self.statements = 0
        self.requests = 0

    def insert(self, tenant_id: int, received_at: datetime, rows: list[Row]) -> list[Inserted]:
        """Insert ``rows`` (unique by source and key among themselves) for ``tenant_id``; the
        (id, source, key) of those that were new. Returns once they are committed."""
        mine = _Request(tenant_id, received_at, rows)
        with self._cond:
            self._queue.append(mine)
        while True:
            with self._cond:
                while self._leading and not mine.done:
                    self._cond.wait()
                if mine.done:
                    break
                # Lead: the oldest queued requests, up to MAX_ROWS rows. Ours may be further
                # back than that: then lead again until it has been served.
                self._leading = True
                batch, self._queue = self._take()
            try:
                self._run(batch)
            finally:
                with self._cond:
                    for request in batch:
                        if not request.done:  # the leader was interrupted mid-batch
                            request.error = RuntimeError("the insert was interrupted; retry")
                            request.done = True
                    self._leading = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.result

    def _take(self) -> tuple[list[_Request], list[_Request]]:
        """The queued requests up to MAX_ROWS (always at least one), and the rest."""
        total, cut = 0, 0
        while cut < len(self._queue):
            total += len(self._queue[cut].rows)
            if total > MAX_ROWS and cut > 0:
                break
            cut += 1
        return self._queue[:cut], self._queue[cut:]

    def _run(self, batch: list[_Request]) -> None:
        """Insert the batch in one statement; if refused, each request in its own."""
        try:
            self._execute(batch)
            return
        except Exception as exc:
            if len(batch) == 1:
                self._finish(batch[0], error=exc)
                return
        for request in batch:
            try:
                self._execute([request])
            except Exception as exc:
                self._finish(request, error=exc)

    def _execute(self, batch: list[_Request]) -> None:
        returned = self.writer.fetchall(_INSERT, (_document(batch),))
        self.statements += 1
        new: dict[tuple[int, str, str], int] = {
            (tenant, source, key): inbox_id for inbox_id, tenant, source, key in returned
        }
        for request in batch:
            result: list[Inserted] = []
            for row in request.rows:
                # pop: the same key sent by two requests of one batch is new for one only
                inbox_id = new.pop((request.tenant_id, row["source"], row["event_key"]), None)
                if inbox_id is not None:
                    result.append((inbox_id, row["source"], row["event_key"]))
            self._finish(request, result=result)

    def _finish(
        self,
        request: _Request,
        *,
        result: list[Inserted] | None = None,
        error: BaseException | None = None,
    ) -> None:
        with self._cond:
            request.result = result or []
            request.error = error
            request.done = True
            self.requests += 1
