"""Helpers for the credentials tests: award rows made directly (the rules engine's job is
tested elsewhere; here we only need an award to issue from), and the fixture folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from questline.db import Database
from questline.models import Player, PlayerBadge
from tests.conftest import TenantHandle

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openbadges"
AWARDED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def fixture_json(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


def make_award(
    db: Database,
    tenant: TenantHandle,
    *,
    email: str | None = "ada@example.edu",
    badge_id: str = "first-steps",
    name: str = "First Steps",
    tier: int = 0,
    tier_name: str = "First Steps",
    expires_at: datetime | None = None,
    awarded_at: datetime = AWARDED_AT,
) -> tuple[int, int]:
    """A player and one award; returns (player_id, award_id)."""
    with db.session() as session:
        player = Player(tenant_id=tenant.id, display_name="Ada", email=email)
        session.add(player)
        session.flush()
        award = PlayerBadge(
            tenant_id=tenant.id,
            player_id=player.id,
            idempotency_key=f"evt-1:{badge_id}:*:{tier}:{player.id}",
            badge_id=badge_id,
            name=name,
            tier=tier,
            tier_name=tier_name,
            scope="*",
            explanation="Completed 3 lessons in course-1 (rule first-steps)",
            awarded_at=awarded_at,
            expires_at=expires_at,
        )
        session.add(award)
        session.flush()
        return player.id, award.id


@pytest.fixture
def award(db: Database, tenant: TenantHandle) -> tuple[int, int]:
    return make_award(db, tenant)


@pytest.fixture
def expiring_award(db: Database, tenant: TenantHandle) -> tuple[int, int]:
    return make_award(
        db, tenant, badge_id="sprint", name="Sprint", expires_at=AWARDED_AT + timedelta(days=1)
    )


def issue(client: Any, tenant: TenantHandle, player_id: int, award_id: int) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/players/{player_id}/badges/{award_id}/credential", headers=tenant.auth
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def verify_json(client: Any, payload: Any) -> dict[str, Any]:
    response = client.post("/ob/verify", json=payload)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body
