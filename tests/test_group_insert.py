"""Concurrent inbox inserts sharing statements and commits (questline/group_insert.py), on real
PostgreSQL with real threads: every row stored once, each request told exactly what was new."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, text

from questline.db import Database
from questline.group_insert import GroupInserter
from questline.ingest import IngestReport, store_events, validate_items
from questline.models import Tenant
from tests.conftest import TenantHandle, event, new_tenant


def _rows(keys: list[str], source: str = "api") -> list[dict[str, Any]]:
    """Inbox rows as store_events builds them, with a real canonical form."""
    rows = []
    for key in keys:
        canonical = event(key, actor="group-insert-test")
        canonical["occurred_at"] = "2026-11-23T10:00:00+00:00"
        rows.append(
            {"source": source, "event_key": key, "event_type": "lesson.completed",
             "raw": "{}", "canonical": canonical,
             "occurred_at": datetime(2026, 11, 23, 10, tzinfo=UTC)}
        )  # fmt: skip
    return rows


@pytest.fixture
def tenants(committed_db: Database) -> Iterator[Callable[[], TenantHandle]]:
    """Tenants that really commit, deleted afterwards with every row they own (a committed
    inbox row left behind would be drained by other tests' inline pipelines)."""
    made: list[int] = []

    def make() -> TenantHandle:
        handle = new_tenant(committed_db)
        made.append(handle.id)
        return handle

    yield make
    with committed_db.session() as session:
        session.execute(delete(Tenant).where(Tenant.id.in_(made)))


def _stored(db: Database, tenant_id: int) -> list[str]:
    with db.engine.connect() as conn:  # type: ignore[union-attr]
        rows = conn.execute(
            text("SELECT event_key FROM inbox_events WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return sorted(key for (key,) in rows)


def test_concurrent_requests_share_statements_and_each_learns_what_was_new(
    committed_db: Database, tenants: Callable[[], TenantHandle]
) -> None:
    tenant = tenants()
    other = tenants()
    inserter = GroupInserter(committed_db.direct)  # type: ignore[arg-type]
    results: dict[int, list[tuple[int, str, str]]] = {}
    barrier = threading.Barrier(16)

    def request(n: int) -> None:
        # Requests overlap on purpose: key k-(n//2) is sent by two threads.
        keys = [f"k-{n // 2}", f"own-{n}"]
        barrier.wait()
        results[n] = inserter.insert(
            tenant.id if n % 4 else other.id, datetime.now(UTC), _rows(keys)
        )

    threads = [threading.Thread(target=request, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inserter.requests == 16
    assert inserter.statements < 16  # some requests shared a statement (and its commit)
    new_keys = [(n, key) for n, inserted in results.items() for _id, _src, key in inserted]
    assert sorted(k for _, k in new_keys if k.startswith("own-")) == sorted(
        f"own-{n}" for n in range(16)
    )
    # A shared key is new for exactly one request per tenant that sent it.
    shared = [(n % 4 == 0, k) for n, k in new_keys if k.startswith("k-")]
    assert len(shared) == len(set(shared))
    # k-m goes to two tenants when m is even (two new rows), to one tenant twice when m is odd.
    stored = _stored(committed_db, tenant.id) + _stored(committed_db, other.id)
    assert len(new_keys) == len(stored) == 16 + 4 * 2 + 4 * 1


def test_a_refused_batch_is_retried_per_request_so_others_keep_their_rows(
    committed_db: Database, tenants: Callable[[], TenantHandle]
) -> None:
    tenant = tenants()
    inserter = GroupInserter(committed_db.direct)  # type: ignore[arg-type]
    good = _rows(["fine-1"])
    bad = _rows(["x" * 300])  # longer than event_key's 255: PostgreSQL refuses the statement
    errors: list[BaseException] = []
    done: list[list[tuple[int, str, str]]] = []
    barrier = threading.Barrier(6)

    def send(rows: list[dict[str, Any]], key: str) -> None:
        barrier.wait()
        try:
            done.append(inserter.insert(tenant.id, datetime.now(UTC), rows))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(_rows([f"ok-{i}"]), "")) for i in range(5)]
    threads.append(threading.Thread(target=send, args=(bad, "")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and "too long" in str(errors[0])
    assert sorted(_stored(committed_db, tenant.id)) == [f"ok-{i}" for i in range(5)]
    assert inserter.insert(tenant.id, datetime.now(UTC), good)[0][1:] == ("api", "fine-1")


def test_store_events_through_the_writer_reports_accepted_and_duplicates(
    committed_db: Database, tenants: Callable[[], TenantHandle]
) -> None:
    tenant = tenants()
    report = IngestReport()
    items = [event("a"), event("b"), event("a")]
    valid = validate_items(items, report)
    with committed_db.autocommit() as writer:
        store_events(writer, tenant.id, valid, datetime.now(UTC), report)
    assert report.accepted == ["a", "b"] and report.duplicates == ["a"]
    again = IngestReport()
    with committed_db.autocommit() as writer:
        store_events(
            writer, tenant.id, validate_items([event("b")], again), datetime.now(UTC), again
        )
    assert again.accepted == [] and again.duplicates == ["b"]
    assert len(again.inbox_ids) == 0 and len(report.inbox_ids) == 2


@pytest.mark.parametrize("threads", [1, 8])
def test_many_threads_many_requests_nothing_lost_nothing_twice(
    committed_db: Database, tenants: Callable[[], TenantHandle], threads: int
) -> None:
    tenant = tenants()
    inserter = committed_db.direct.group()  # type: ignore[union-attr]
    assert inserter is committed_db.direct.group()  # type: ignore[union-attr]
    accepted: list[str] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(40):
            keys = [f"e-{(t * 40 + i) % 150}"]  # keys repeat across threads and requests
            got = inserter.insert(tenant.id, datetime.now(UTC), _rows(keys))
            with lock:
                accepted.extend(key for _id, _src, key in got)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stored = _stored(committed_db, tenant.id)
    assert sorted(accepted) == stored  # each stored key was reported new exactly once
    assert len(stored) == min(150, threads * 40)


def test_a_queue_longer_than_one_statement_serves_every_request(
    committed_db: Database, tenants: Callable[[], TenantHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader takes at most MAX_ROWS rows; a request queued further back must still be
    served (by leading again), never answered with nothing."""
    import questline.group_insert

    monkeypatch.setattr(questline.group_insert, "MAX_ROWS", 3)
    tenant = tenants()
    inserter = GroupInserter(committed_db.direct)  # type: ignore[arg-type]
    results: dict[int, list[str]] = {}
    barrier = threading.Barrier(12)

    def request(n: int) -> None:
        barrier.wait()
        got = inserter.insert(tenant.id, datetime.now(UTC), _rows([f"q{n}-a", f"q{n}-b"]))
        results[n] = sorted(key for _id, _src, key in got)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: [f"q{n}-a", f"q{n}-b"] for n in range(12)}
    assert len(_stored(committed_db, tenant.id)) == 24
