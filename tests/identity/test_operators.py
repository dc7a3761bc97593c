"""Platform operators: an operator key reads the ops API across tenants (health, metrics, tenants,
failed events) and nothing about a tenant's people; a tenant admin's key reads no ops route."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from engine.events import parse_event
from identity.operators import is_operator_key, key_digest, new_operator_key
from questline.db import Database
from questline.ingest import IngestReport, store_events
from questline.models import InboxEvent
from questline.settings import Settings
from tests.conftest import TenantHandle, event

OPERATOR_KEY, _ = new_operator_key()
OPS_ROUTES = ("/api/v1/ops/health", "/api/v1/ops/metrics", "/api/v1/ops/tenants")
OPS_ROUTES += ("/api/v1/ops/events/failed",)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, operator_key_hashes=("0" * 64, key_digest(OPERATOR_KEY)))


def _op() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_KEY}"}


def _learner_with_failed_event(client: Any, tenant: TenantHandle, db: Database) -> int:
    """A learner with a processed event, and a failed one whose error quotes their email."""
    posted = client.post(
        "/api/v1/events",
        json={**event("ok-1", actor="opal"), "actor": {"id": "opal", "email": "opal@acme.test"}},
        headers=tenant.auth,
    )
    assert posted.status_code == 202
    bad = {**event("bad-1", actor="opal"), "actor": {"id": "opal", "email": "opal@acme.test"}}
    report = IngestReport()
    with db.session() as session:
        store_events(session, tenant.id, [(parse_event(bad), bad)], datetime.now(UTC), report)
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_(report.inbox_ids))
            .values(status="failed", attempts=3, last_error="ValueError: opal@acme.test is odd")
        )
    player = client.get("/api/v1/players?actor=opal", headers=tenant.auth).get_json()
    return int(player["players"][0]["id"])


def test_operator_reads_ops_across_tenants(
    client: Any, tenant: TenantHandle, other_tenant: TenantHandle, db: Database
) -> None:
    _learner_with_failed_event(client, tenant, db)
    health = client.get("/api/v1/ops/health", headers=_op())
    assert health.status_code == 200 and health.get_json()["database"]["ok"] is True
    metrics = client.get("/api/v1/ops/metrics", headers=_op())
    assert metrics.status_code == 200 and "questline_inbox_events" in metrics.get_data(True)

    listed = client.get("/api/v1/ops/tenants", headers=_op())
    assert listed.status_code == 200
    by_id = {t["id"]: t for t in listed.get_json()["tenants"]}
    assert {tenant.id, other_tenant.id} <= set(by_id)  # both tenants, from one key
    assert by_id[tenant.id]["players"] == 1
    assert by_id[tenant.id]["inbox"] == {"applied": 1, "failed": 1}
    assert by_id[other_tenant.id]["players"] == 0

    failed = client.get("/api/v1/ops/events/failed?limit=10", headers=_op())
    assert failed.status_code == 200
    (row,) = [e for e in failed.get_json()["events"] if e["tenant_id"] == tenant.id]
    assert row["error"] == "ValueError" and row["attempts"] == 3 and row["source"] == "api"
    # No learner's personal data on any ops answer.
    for path in OPS_ROUTES:
        assert "opal" not in client.get(path, headers=_op()).get_data(True).lower(), path


def test_operator_key_reads_no_tenant_people(
    client: Any, tenant: TenantHandle, db: Database
) -> None:
    player_id = _learner_with_failed_event(client, tenant, db)
    for path in (
        f"/api/v1/identity/players/{player_id}",
        f"/api/v1/identity/players/{player_id}/export",
        "/api/v1/identity/audit",
        "/api/v1/identity/courses/course-1/players",
    ):
        response = client.get(path, headers=_op())
        assert response.status_code == 403, (path, response.get_json())
    # The core API knows tenant keys and tenant tokens only.
    for path in (f"/api/v1/players/{player_id}", "/api/v1/players?actor=opal"):
        assert client.get(path, headers=_op()).status_code == 401, path
    assert client.delete(f"/api/v1/players/{player_id}", headers=_op()).status_code == 403


def test_tenant_admin_and_strangers_get_no_ops(client: Any, tenant: TenantHandle) -> None:
    unknown_op = {"Authorization": "Bearer " + new_operator_key()[0]}
    for path in OPS_ROUTES:
        assert client.get(path, headers=tenant.auth).status_code == 403, path  # tenant admin
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=unknown_op).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Basic x"}).status_code == 401, path
    for limit in ("0", "501", "ten", "-1"):
        response = client.get(f"/api/v1/ops/events/failed?limit={limit}", headers=_op())
        assert response.status_code == 400 and "limit" in response.get_json()["message"]


def test_key_check_and_cli() -> None:
    key, digest = new_operator_key()
    assert key.startswith("qlop_") and digest == key_digest(key) and len(digest) == 64
    assert is_operator_key(key, ("f" * 64, digest))
    assert not is_operator_key(key, ()) and not is_operator_key(key + "x", (digest,))
    from questline.cli import main

    out = CliRunner().invoke(main, ["operators", "new-key"])
    assert out.exit_code == 0, out.output
    printed_key = out.output.split("shown once): ")[1].split()[0]
    printed_digest = out.output.rsplit(": ", 1)[1].strip()
    assert key_digest(printed_key) == printed_digest
