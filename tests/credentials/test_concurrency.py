"""Issuing from many requests at once, on a database that really commits: every credential
gets its own status list index (a shared bit would revoke two badges at once), and issuing the
same award twice at once still yields one credential, and a new tenant gets one key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import delete, select

from credentials import service
from credentials.models import IssuedCredential
from questline.db import Database
from questline.models import Tenant
from tests.conftest import new_tenant
from tests.credentials.conftest import make_award


def _issue(database: Database, tenant_id: int, award_id: int) -> tuple[int, str]:
    with database.session() as session:
        row = service.issue_for_award(
            session,
            tenant_id,
            award_id,
            base="https://questline.example",
            secret="test-secret",
            now=datetime.now(UTC),
        )
        return row.status_index, row.uuid


def test_concurrent_issuing_allocates_distinct_indexes(committed_db: Database) -> None:
    tenant = new_tenant(committed_db)
    try:
        awards = [
            make_award(committed_db, tenant, badge_id=f"b{i}", email=f"p{i}@example.edu")[1]
            for i in range(8)
        ]
        jobs = awards + awards[:4]  # four awards asked for twice at the same moment
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda a: _issue(committed_db, tenant.id, a), jobs))
        by_award = dict(zip(jobs, results, strict=True))
        for award_id, result in zip(jobs, results, strict=True):
            assert by_award[award_id] == result  # the same credential both times
        with committed_db.session() as session:
            indexes = session.scalars(
                select(IssuedCredential.status_index).where(IssuedCredential.tenant_id == tenant.id)
            ).all()
            keys = service.tenant_keys(session, tenant.id)
        assert sorted(indexes) == list(range(8))
        assert len(keys) == 1  # a new tenant's first issuers raced to create its key: one won
    finally:
        with committed_db.session() as session:
            session.execute(delete(Tenant).where(Tenant.id == tenant.id))
