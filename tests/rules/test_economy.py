"""Currency and the shop through the real pipeline, API and PostgreSQL: coins earned by rules
with balance_after, purchases that are idempotent and never overspend, even under concurrent
requests from threads on separate connections."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, select

from engine.rules import parse_rules
from engine.shop import PurchaseRefused
from questline.currency import Credit, apply_credits, ledger_totals, purchase
from questline.models import Player, PlayerInventory, Tenant
from questline.rules_models import CurrencyLedger
from tests.conftest import event, new_tenant
from tests.rules.helpers import post
from workers.rulesets import store_version

RULES: dict[str, Any] = {
    "version": 2,
    "xp": [
        {"id": "lesson", "on": "lesson.completed", "points": 10, "currency": 5},
        {
            "id": "login-coins",
            "on": "session.started",
            "points": 0,
            "currency": 2,
            "cooldown": "1d",
        },
    ],
    "streaks": {"max_freezes": 2},
    "shop": [
        {"id": "freeze", "name": "Streak freeze", "price": 10, "item": "streak_freeze"},
        {"id": "hat", "name": "Party hat", "price": 7, "limit": 1},
    ],
}


def setup(db: Any, tenant: Any, document: dict[str, Any] | None = None) -> None:
    with db.session() as session:
        store_version(session, tenant.id, document or RULES, course=None, actor="test")


def pid_of(client: Any, tenant: Any, actor: str = "ann") -> int:
    found = client.get(f"/api/v1/players?actor={actor}", headers=tenant.auth).get_json()
    return int(found["players"][0]["id"])


def earn(client: Any, tenant: Any, n: int, actor: str = "ann") -> int:
    post(client, tenant, *(event(f"l{i}", actor=actor) for i in range(n)))
    return pid_of(client, tenant, actor)


def test_rules_pay_coins_with_balance_after_and_explanations(client, db, ctx, tenant):
    setup(db, tenant)
    post(
        client,
        tenant,
        event("1", actor="ann"),
        event("2", actor="ann"),
        event("s1", type="session.started", actor="ann", at="2026-11-20T08:00:00Z", object=None),
        # within the cooldown (per object; these events have none): no coins
        event("s2", type="session.started", actor="ann", at="2026-11-20T09:00:00Z", object=None),
    )
    post(client, tenant, event("1", actor="ann"))  # a duplicate pays nothing
    pid = pid_of(client, tenant)
    wallet = client.get(f"/api/v1/players/{pid}/wallet", headers=tenant.auth).get_json()
    assert wallet["balance"] == 12
    entries = list(reversed(wallet["entries"]))
    assert [(e["amount"], e["balance_after"]) for e in entries] == [(2, 2), (5, 7), (5, 12)]
    assert entries[0]["explanation"] == (
        "rule `login-coins` matched session.started event s1: +2 coins"
    )
    assert entries[1]["explanation"] == "rule `lesson` matched lesson.completed event 1: +5 coins"
    player = client.get(f"/api/v1/players/{pid}", headers=tenant.auth).get_json()
    assert player["xp"] == 20  # the coins-only rule gives no XP


def test_purchase_is_idempotent_and_refuses_clearly(client, db, ctx, tenant, other_tenant):
    setup(db, tenant)
    pid = earn(client, tenant, 5)  # 25 coins
    url = f"/api/v1/players/{pid}/purchases"
    first = client.post(url, json={"item": "hat", "request_id": "r1"}, headers=tenant.auth)
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["balance_after"], body["held"], body["price"]) == (18, 1, 7)
    again = client.post(url, json={"item": "hat", "request_id": "r1"}, headers=tenant.auth)
    assert again.status_code == 200 and again.get_json() == body

    limit = client.post(url, json={"item": "hat", "request_id": "r2"}, headers=tenant.auth)
    assert limit.status_code == 409 and limit.get_json()["error"] == "limit_reached"
    reused = client.post(url, json={"item": "freeze", "request_id": "r1"}, headers=tenant.auth)
    assert reused.status_code == 409 and reused.get_json()["error"] == "request_id_reused"

    headers = {**tenant.auth, "Idempotency-Key": "f1"}
    assert client.post(url, json={"item": "freeze"}, headers=headers).status_code == 201
    broke = client.post(url, json={"item": "freeze", "request_id": "f2"}, headers=tenant.auth)
    assert broke.status_code == 409
    assert broke.get_json() == {
        "error": "insufficient_funds",
        "message": "Streak freeze costs 10 and the balance is 8",
    }

    missing = client.post(url, json={"item": "hat"}, headers=tenant.auth)
    assert missing.status_code == 422 and missing.get_json()["details"][0]["field"] == "request_id"
    unknown = client.post(url, json={"item": "car", "request_id": "x"}, headers=tenant.auth)
    assert unknown.status_code == 404 and "car" in unknown.get_json()["message"]
    not_json = client.post(url, data="hat", headers=tenant.auth)
    assert not_json.status_code == 422
    elsewhere = client.post(url, json={"item": "hat", "request_id": "z"}, headers=other_tenant.auth)
    assert elsewhere.status_code == 404

    wallet = client.get(f"/api/v1/players/{pid}/wallet", headers=tenant.auth).get_json()
    assert [e["amount"] for e in wallet["entries"]][:2] == [-10, -7]
    assert wallet["balance"] == 8
    with db.sessions() as session:
        assert ledger_totals(session, tenant.id) == {pid: (8, 8)}


def test_streak_freezes_are_capped_by_max_freezes():
    rules = parse_rules(RULES)
    freeze = rules.shop[0]
    with pytest.raises(PurchaseRefused) as caught:
        from engine.shop import check_purchase

        check_purchase(freeze, balance=100, held=2, max_freezes=rules.streaks.max_freezes)
    assert caught.value.code == "limit_reached"


def test_a_bought_freeze_bridges_a_missed_day(client, db, ctx, tenant):
    setup(db, tenant)
    pid = earn(client, tenant, 2)
    url = f"/api/v1/players/{pid}/purchases"
    assert (
        client.post(url, json={"item": "freeze", "request_id": "f"}, headers=tenant.auth)
    ).status_code == 201
    post(
        client,
        tenant,
        event("d1", actor="ann", at="2026-11-21T10:00:00Z"),
        event("d3", actor="ann", at="2026-11-23T10:00:00Z"),  # the 22nd was missed
    )
    player = client.get(f"/api/v1/players/{pid}", headers=tenant.auth).get_json()
    # 20th (the first lessons), 21st, 23rd: the frozen 22nd keeps the streak without counting
    assert player["streak"]["current"] == 3
    inventory = client.get(f"/api/v1/players/{pid}/inventory", headers=tenant.auth).get_json()
    assert inventory["items"] == {}


def test_grant_is_idempotent_and_validated(client, db, ctx, tenant):
    setup(db, tenant)
    pid = earn(client, tenant, 1)
    url = f"/api/v1/players/{pid}/wallet/grant"
    body = {"amount": 40, "reason": "won the hackathon", "request_id": "g1"}
    assert client.post(url, json=body, headers=tenant.auth).get_json()["balance"] == 45
    assert client.post(url, json=body, headers=tenant.auth).get_json()["balance"] == 45
    bad = client.post(url, json={**body, "amount": -5}, headers=tenant.auth)
    assert bad.status_code == 422 and bad.get_json()["details"][0]["field"] == "amount"
    assert client.post(url, json={**body, "reason": ""}, headers=tenant.auth).status_code == 422


# --- concurrency on real PostgreSQL connections ----------------------------------------------


@pytest.fixture
def rich_player(committed_db):
    """A committed tenant and player holding 50 coins; deleted afterwards."""
    tenant = new_tenant(committed_db)
    with committed_db.session() as session:
        player = Player(tenant_id=tenant.id, display_name="Rich")
        session.add(player)
        session.flush()
        pid = player.id
        apply_credits(session, tenant.id, [Credit(pid, "seed", "grant", "test", 50, "seed")])
    yield committed_db, tenant, pid
    with committed_db.session() as session:
        session.execute(delete(Tenant).where(Tenant.id == tenant.id))


def _race(database, tenant_id, pid, request_ids, item):
    """Buy ``item`` from one thread per request id, all released at once."""
    barrier = threading.Barrier(len(request_ids))
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(request_id: str) -> None:
        barrier.wait()
        try:
            with database.session() as session:
                found = purchase(
                    session, tenant_id, pid, item, request_id, max_freezes=2, now=datetime.now(UTC)
                )
                assert found is not None
            outcome = "new" if found[1] else "repeat"
        except PurchaseRefused as exc:
            outcome = exc.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=buy, args=(r,)) for r in request_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(outcomes)


def test_concurrent_purchases_never_overspend(rich_player):
    database, tenant, pid = rich_player
    item = parse_rules({"shop": [{"id": "gem", "price": 10}]}).shop[0]
    outcomes = _race(database, tenant.id, pid, [f"r{i}" for i in range(8)], item)
    assert outcomes == ["insufficient_funds"] * 3 + ["new"] * 5
    with database.sessions() as session:
        assert ledger_totals(session, tenant.id) == {pid: (0, 0)}
        afters = session.scalars(
            select(CurrencyLedger.balance_after)
            .where(CurrencyLedger.player_id == pid)
            .order_by(CurrencyLedger.id)
        ).all()
        assert afters == [50, 40, 30, 20, 10, 0]
        gems = session.scalar(
            select(PlayerInventory.quantity).where(
                PlayerInventory.player_id == pid, PlayerInventory.item == "gem"
            )
        )
        assert gems == 5


def test_concurrent_retries_of_one_purchase_spend_once(rich_player):
    database, tenant, pid = rich_player
    item = parse_rules({"shop": [{"id": "gem", "price": 10}]}).shop[0]
    outcomes = _race(database, tenant.id, pid, ["same"] * 6, item)
    assert outcomes == ["new"] + ["repeat"] * 5
    with database.sessions() as session:
        assert ledger_totals(session, tenant.id) == {pid: (40, 40)}
