"""Small helpers shared by the rules tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from questline.models import Player, PlayerIdentity, XpLedger
from tests.conftest import TenantHandle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"


def post(client: Any, tenant: TenantHandle, *items: dict[str, Any]) -> None:
    response = client.post("/api/v1/events", json=list(items), headers=tenant.auth)
    assert response.status_code == 202, response.get_json()


def xp_by_actor(db: Any, tenant: TenantHandle) -> dict[str, int]:
    with db.sessions() as session:
        rows = session.execute(
            select(PlayerIdentity.value, Player.xp)
            .join(Player, Player.id == PlayerIdentity.player_id)
            .where(Player.tenant_id == tenant.id, PlayerIdentity.kind == "actor")
        )
        return {value: xp for value, xp in rows}


def ledger(db: Any, tenant: TenantHandle) -> list[tuple[str, int, str]]:
    """(idempotency key, amount, explanation) in key order."""
    with db.sessions() as session:
        rows = session.execute(
            select(XpLedger.idempotency_key, XpLedger.amount, XpLedger.explanation)
            .where(XpLedger.tenant_id == tenant.id)
            .order_by(XpLedger.idempotency_key)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]
