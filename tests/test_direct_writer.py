"""The ingest hot path's held psycopg connection: survives a killed backend, closes cleanly."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from questline.db import Database


def test_a_killed_connection_is_replaced_and_the_statement_sent_again(committed_db: Database):
    writer = committed_db.direct
    assert writer is not None
    (pid,) = writer.fetchall("SELECT pg_backend_pid()", ())[0]
    with committed_db.engine.connect() as admin:  # type: ignore[union-attr]
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    (new_pid,) = writer.fetchall("SELECT pg_backend_pid()", ())[0]
    assert new_pid != pid


def test_each_thread_has_its_own_connection_and_dispose_closes_all(pg_url: str):
    database = Database(pg_url)
    writer = database.direct
    assert writer is not None
    pids: list[int] = []

    def use() -> None:
        pids.append(writer.fetchall("SELECT pg_backend_pid()", ())[0][0])

    threads = [threading.Thread(target=use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    use()
    assert len(set(pids)) == 4
    database.dispose()
    for _ in range(50):  # a backend leaves pg_stat_activity a moment after its client goes
        with database.engine.connect() as conn:  # type: ignore[union-attr]
            alive = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": pids},
            ).scalar()
        if alive == 0:
            break
        time.sleep(0.05)
    database.dispose()
    assert alive == 0
