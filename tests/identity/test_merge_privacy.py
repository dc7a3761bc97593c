"""Admin merge and unlink, and privacy (export, erase), on the real pipeline: events go through
the inbox, the engine and the ledger, then identities are merged or erased."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from identity.models import IdentityAudit, PlayerMerge
from questline.db import Database
from questline.models import InboxEvent, Player, PlayerIdentity, XpLedger
from tests.conftest import TenantHandle, event


def post(client: Any, tenant: TenantHandle, *items: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/events", json=list(items), headers=tenant.auth)
    assert response.status_code == 202, response.get_json()
    return dict(response.get_json())


def player_of(client: Any, tenant: TenantHandle, actor: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/players?actor={actor}", headers=tenant.auth)
    assert response.status_code == 200, response.get_json()
    (player,) = response.get_json()["players"]
    return dict(player)


def board(client: Any, tenant: TenantHandle) -> dict[int, int]:
    data = client.get("/api/v1/leaderboards/tenant", headers=tenant.auth).get_json()
    return {e["player_id"]: e["xp"] for e in data["entries"]}


def merge(client: Any, tenant: TenantHandle, source: int, target: int) -> Any:
    return client.post(
        "/api/v1/identity/merge", json={"source": source, "target": target}, headers=tenant.auth
    )


def test_merge_combines_ledgers_once_and_routes_new_events(
    client: Any, tenant: TenantHandle, db: Database
) -> None:
    lms_events = [event("l1", actor="lms-ann"), event("l2", actor="lms-ann", course="course-2")]
    crm_events = [event("c1", actor="crm-0042", type="course.completed")]
    post(client, tenant, *lms_events, *crm_events)
    ann, crm = player_of(client, tenant, "lms-ann"), player_of(client, tenant, "crm-0042")
    assert ann["id"] != crm["id"]
    total = ann["xp"] + crm["xp"]

    response = merge(client, tenant, crm["id"], ann["id"])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["moved"]["ledger"] >= 1
    after = client.get(f"/api/v1/players/{ann['id']}", headers=tenant.auth).get_json()
    assert after["xp"] == total
    assert board(client, tenant) == {ann["id"]: total}  # boards rebuilt: one entry, summed

    # Idempotent: the same merge again, and the same events again, change nothing.
    again = merge(client, tenant, crm["id"], ann["id"])
    assert again.status_code == 200 and again.get_json()["already_merged"] is True
    replay = post(client, tenant, *lms_events, *crm_events)
    assert len(replay["duplicates"]) == 3
    assert client.get(f"/api/v1/players/{ann['id']}", headers=tenant.auth).get_json()["xp"] == total

    # A new event from the CRM id now lands on the merged player.
    post(client, tenant, event("c2", actor="crm-0042"))
    assert player_of(client, tenant, "crm-0042")["id"] == ann["id"]
    with db.sessions() as session:
        ledger_sum = session.scalar(
            select(func.sum(XpLedger.amount)).where(
                XpLedger.tenant_id == tenant.id, XpLedger.player_id == ann["id"]
            )
        )
        player = session.get(Player, ann["id"])
        assert player is not None and player.xp == ledger_sum
        assert session.scalar(select(func.count()).select_from(PlayerMerge)) == 1
        actions = session.scalars(
            select(IdentityAudit.action).where(IdentityAudit.tenant_id == tenant.id)
        ).all()
        assert "merge" in actions

    # A worker that resolved the CRM actor just before the merge may still write to the source
    # shell; merging again moves that straggler too.
    from datetime import UTC, datetime

    with db.session() as session:
        session.add(
            XpLedger(
                tenant_id=tenant.id,
                player_id=crm["id"],
                idempotency_key="late:rule",
                rule_id="rule",
                amount=7,
                explanation="late",
                occurred_at=datetime.now(UTC),
            )
        )
        shell = session.get(Player, crm["id"])
        assert shell is not None
        shell.xp, shell.events_applied = 7, 1
    before = client.get(f"/api/v1/players/{ann['id']}", headers=tenant.auth).get_json()["xp"]
    healed = merge(client, tenant, crm["id"], ann["id"]).get_json()
    assert healed["already_merged"] is True and healed["moved"]["ledger"] == 1
    after_heal = client.get(f"/api/v1/players/{ann['id']}", headers=tenant.auth).get_json()
    assert after_heal["xp"] == before + 7
    assert board(client, tenant)[ann["id"]] == before + 7

    # Merging the other way round is refused, and so are self-merges and bad bodies.
    assert merge(client, tenant, ann["id"], crm["id"]).status_code == 409
    assert merge(client, tenant, ann["id"], ann["id"]).status_code == 400
    bad = client.post("/api/v1/identity/merge", json={"source": "x"}, headers=tenant.auth)
    assert bad.status_code == 400 and "source" in bad.get_json()["message"]


def test_link_and_unlink_by_admin(client: Any, tenant: TenantHandle) -> None:
    post(client, tenant, event("a1", actor="ann"), event("b1", actor="bob"))
    ann, bob = player_of(client, tenant, "ann"), player_of(client, tenant, "bob")
    url = f"/api/v1/identity/players/{ann['id']}/identities"
    linked = client.post(url, json={"kind": "employee", "value": "E-7"}, headers=tenant.auth)
    assert linked.status_code == 201
    taken = client.post(url, json={"kind": "actor", "value": "bob"}, headers=tenant.auth)
    assert taken.status_code == 409 and "merge" in taken.get_json()["message"]
    bad = client.post(url, json={"kind": "shoe-size", "value": "9"}, headers=tenant.auth)
    assert bad.status_code == 400
    # Unlink the actor id: the next event from "ann" makes a new player.
    ids = client.get(f"/api/v1/identity/players/{ann['id']}", headers=tenant.auth).get_json()
    actor_id = next(i["id"] for i in ids["identities"] if i["kind"] == "actor")
    gone = client.delete(f"{url}/{actor_id}", headers=tenant.auth)
    assert gone.status_code == 204
    assert client.delete(f"{url}/{actor_id}", headers=tenant.auth).status_code == 404
    post(client, tenant, event("a2", actor="ann"))
    assert player_of(client, tenant, "ann")["id"] not in (ann["id"], bob["id"])


def test_erase_keeps_anonymised_aggregates(client: Any, tenant: TenantHandle, db: Database) -> None:
    post(
        client,
        tenant,
        event("e1", actor="erin", type="course.completed"),
        {**event("e2", actor="erin"), "actor": {"id": "erin", "email": "erin@acme.test"}},
    )
    erin = player_of(client, tenant, "erin")
    before = board(client, tenant)
    response = client.delete(f"/api/v1/players/{erin['id']}", headers=tenant.auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["events_redacted"] == 2

    read = client.get(f"/api/v1/players/{erin['id']}", headers=tenant.auth).get_json()
    assert read["display_name"] == f"Erased player {erin['id']}"
    assert read["xp"] == erin["xp"]
    assert board(client, tenant) == before
    assert client.get("/api/v1/players?actor=erin", headers=tenant.auth).status_code == 404
    with db.sessions() as session:
        player = session.get(Player, erin["id"])
        assert player is not None and player.email is None
        values = session.scalars(
            select(PlayerIdentity.value).where(PlayerIdentity.player_id == erin["id"])
        ).all()
        assert values == [f"erased:{erin['id']}"]
        for row in session.scalars(select(InboxEvent).where(InboxEvent.player_id == erin["id"])):
            assert row.raw == "" and "erin" not in json.dumps(row.canonical)
    assert client.delete("/api/v1/players/999999999", headers=tenant.auth).status_code == 404


def test_export_through_the_api(client: Any, tenant: TenantHandle) -> None:
    post(client, tenant, event("x1", actor="xena"))
    xena = player_of(client, tenant, "xena")
    data = client.get(
        f"/api/v1/identity/players/{xena['id']}/export", headers=tenant.auth
    ).get_json()
    assert data["player"]["xp"] == xena["xp"]
    assert data["identities"] == [
        {"id": data["identities"][0]["id"], "kind": "actor", "value": "xena"}
    ]
    assert [e["source"] for e in data["events"]] == ["api"]
    assert sum(x["amount"] for x in data["ledger"]) == xena["xp"]


def test_cli_export_and_sso_configure(
    committed_db: Database, monkeypatch: Any, pg_url: str
) -> None:
    from questline.cli import main
    from tests.conftest import new_tenant

    monkeypatch.setenv("QUESTLINE_DATABASE_URL", pg_url)
    monkeypatch.setenv("QUESTLINE_LOG_LEVEL", "WARNING")
    handle = new_tenant(committed_db)
    try:
        with committed_db.session() as session:
            player = Player(tenant_id=handle.id, display_name="Cli Person", email="c@acme.test")
            session.add(player)
            session.flush()
            player_id = player.id
        runner = CliRunner()
        out = runner.invoke(main, ["players", "export", str(player_id), "--tenant", str(handle.id)])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["player"]["email"] == "c@acme.test"
        missing = runner.invoke(
            main, ["players", "export", "999999999", "--tenant", str(handle.id)]
        )
        assert missing.exit_code != 0 and "no player" in missing.output
        args = ["sso", "configure", "--tenant", str(handle.id), "--issuer", "https://idp.acme.test"]
        out = runner.invoke(main, [*args, "--client-id", "q", "--client-secret", "s3cret"])
        assert out.exit_code == 0, out.output
        assert '"client_id": "q"' in out.output and "s3cret" not in out.output
        with committed_db.session() as session:
            twin = Player(tenant_id=handle.id, display_name="Cli Twin", xp=0)
            session.add(twin)
            session.flush()
            twin_id = twin.id
        merged = runner.invoke(
            main, ["players", "merge", str(twin_id), str(player_id), "--tenant", str(handle.id)]
        )
        assert merged.exit_code == 0 and '"already_merged": false' in merged.output
        erased = runner.invoke(
            main, ["players", "erase", str(player_id), "--tenant", str(handle.id), "--yes"]
        )
        assert erased.exit_code == 0, erased.output
        with committed_db.sessions() as session:
            gone = session.get(Player, player_id)
            assert gone is not None and gone.email is None
            assert gone.display_name == f"Erased player {player_id}"
        bad = runner.invoke(
            main, ["sso", "configure", "--tenant", str(handle.id), "--issuer", "ftp://x"]
        )
        assert bad.exit_code != 0 and "https" in bad.output
        first = runner.invoke(
            main, ["sso", "configure", "--tenant", "no-such-tenant", "--issuer", "https://i"]
        )
        assert first.exit_code != 0 and "no tenant" in first.output
    finally:
        from sqlalchemy import delete

        from questline.models import Tenant

        with committed_db.session() as session:
            session.execute(delete(Tenant).where(Tenant.id == handle.id))
