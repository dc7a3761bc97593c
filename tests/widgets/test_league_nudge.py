"""The league widget's banner: a learner in the cohort's demotion zone sees how far safety is."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import update

from questline.db import Database
from questline.league_models import LeagueCohort, LeagueMembership
from tests.conftest import TenantHandle, event
from tests.widgets.helpers import embed, ingest, player_id


def _cohort_one_tier_up(client: FlaskClient, db: Database, tenant: TenantHandle) -> None:
    on = client.put(
        "/api/v1/leagues/config",
        json={"tiers": ["Bronze", "Silver"], "cohort_size": 10, "promote": 1, "demote": 2},
        headers=tenant.auth,
    )
    assert on.status_code == 200, on.get_json()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    counts = {"ada": 4, "bo": 3, "cy": 2, "dee": 1}
    ingest(
        client,
        tenant,
        [event(f"{a}-{i}", actor=a, at=stamp) for a, n in counts.items() for i in range(n)],
    )
    # The lowest tier has no demotion zone: seat the cohort one tier up, as if promoted.
    with db.session() as session:
        session.execute(
            update(LeagueMembership).where(LeagueMembership.tenant_id == tenant.id).values(tier=1)
        )
        session.execute(
            update(LeagueCohort).where(LeagueCohort.tenant_id == tenant.id).values(tier=1)
        )


def test_demotion_zone_shows_the_xp_to_safety_and_respects_opt_out(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    _cohort_one_tier_up(client, db, tenant)
    path, token = embed(client, tenant, player_id=player_id(client, tenant, "dee"), widget="league")
    html = client.get(path).get_data(as_text=True)
    # dee has 10 XP; the lowest safe place (bo) has 30: 21 XP lifts dee out.
    assert "You are in the Silver demotion zone" in html and "21 XP lifts you to safety" in html
    cy, _ = embed(client, tenant, player_id=player_id(client, tenant, "cy"), widget="league")
    assert "11 XP lifts you to safety" in client.get(cy).get_data(as_text=True)
    ada, _ = embed(client, tenant, player_id=player_id(client, tenant, "ada"), widget="league")
    assert "demotion zone" not in client.get(ada).get_data(as_text=True)
    off = client.post("/widgets/nudges", data={"token": token, "off": "1", "back": "league"})
    assert off.status_code in (200, 303), off.get_data(as_text=True)
    assert "demotion zone" not in client.get(path).get_data(as_text=True)


def test_spanish_banner(client: FlaskClient, db: Database, tenant: TenantHandle) -> None:
    _cohort_one_tier_up(client, db, tenant)
    path, _ = embed(
        client, tenant, player_id=player_id(client, tenant, "dee"), widget="league", locale="es"
    )
    html = client.get(path).get_data(as_text=True)
    assert "zona de descenso" in html and "21 XP" in html
