"""``rules load --retro`` also takes back what the new rules no longer give: badges in force
that the replay does not earn are revoked with a reason (and restored by a later retro whose
rules earn them again), and rule coins the replay does not pay are clawed back through the
append-only currency ledger, never below zero (spent coins are forgiven, and said so). Both
are idempotent: a second run changes nothing. Real pipeline and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from questline.models import Player, PlayerBadge, RuleAudit
from questline.rules_models import CurrencyBalance, CurrencyLedger
from questline.rules_replay import retro_apply
from tests.conftest import event
from tests.rules.helpers import post
from workers.rulesets import store_version

SHOP = [{"id": "hat", "name": "Hat", "price": 12}]


def rules(coins: int, count: int) -> dict[str, Any]:
    return {
        "xp": [{"id": "lesson", "on": "lesson.completed", "points": 10, "currency": coins}],
        "levels": {"table": [0, 25, 100]},
        "badges": [{"id": "twice", "name": "Twice", "criteria": {"count": count}}],
        "shop": SHOP,
    }


def history(client: Any, db: Any, tenant: Any) -> dict[str, int]:
    """Ann: 3 lessons (15 coins, badge `twice`); Bob: 1 lesson (5 coins). Player ids by name."""
    with db.session() as session:
        store_version(session, tenant.id, rules(5, 2), course=None, actor="test")
    post(
        client,
        tenant,
        *(event(f"a{i}", actor="ann", at=f"2026-11-2{i}T10:00:00Z") for i in range(3)),
        event("b0", actor="bob", at="2026-11-20T10:00:00Z"),
    )
    with db.sessions() as session:
        return dict(
            session.execute(
                select(Player.display_name, Player.id).where(Player.tenant_id == tenant.id)
            ).all()
        )


def retro(db: Any, tenant: Any, document: dict[str, Any]) -> Any:
    with db.session() as session:
        version = store_version(session, tenant.id, document, course=None, actor="test")
        return retro_apply(session, tenant.id, version=version, course=None, actor="test")


def wallet(db: Any, pid: int) -> tuple[int, int, list[tuple[str, int, int, str]]]:
    """(balance, sum of the ledger, clawback rows (key, amount, balance_after, explanation))."""
    with db.sessions() as session:
        balance = session.scalar(
            select(CurrencyBalance.balance).where(CurrencyBalance.player_id == pid)
        )
        total = session.scalar(
            select(func.sum(CurrencyLedger.amount)).where(CurrencyLedger.player_id == pid)
        )
        rows = session.execute(
            select(
                CurrencyLedger.idempotency_key,
                CurrencyLedger.amount,
                CurrencyLedger.balance_after,
                CurrencyLedger.explanation,
            )
            .where(CurrencyLedger.player_id == pid, CurrencyLedger.kind == "clawback")
            .order_by(CurrencyLedger.id)
        ).all()
        return int(balance or 0), int(total or 0), [tuple(r) for r in rows]  # type: ignore[misc]


def test_badges_no_longer_earned_are_revoked_with_a_reason_once(client, db, ctx, tenant):
    ids = history(client, db, tenant)
    first = retro(db, tenant, rules(5, 5))  # `twice` now needs 5 lessons: Ann has 3
    assert first.badges_revoked == 1
    with db.sessions() as session:
        (badge,) = session.scalars(select(PlayerBadge)).all()
        assert badge.player_id == ids["Ann"] and badge.revoked_at is not None
        assert badge.revoked_by == "retro"
        assert badge.revoked_reason.startswith(
            "retroactive: badge `twice` (Twice) is not earned when the history is replayed "
            "under rules v"
        )
    assert retro(db, tenant, rules(5, 5)).badges_revoked == 0  # idempotent

    back = retro(db, tenant, rules(5, 3))  # 3 lessons earn it again: the award is restored
    assert (back.badges_revoked, back.badges) == (0, 0)
    with db.sessions() as session:
        (badge,) = session.scalars(select(PlayerBadge)).all()
        assert (badge.revoked_at, badge.revoked_reason) == (None, None)
        audit = session.scalars(
            select(RuleAudit.detail).where(RuleAudit.action == "retro").order_by(RuleAudit.id)
        ).all()
        assert [a["badges_revoked"] for a in audit] == [1, 0, 0]


def test_an_admin_revocation_is_not_undone(client, db, ctx, tenant):
    ids = history(client, db, tenant)
    with db.sessions() as session:
        award = session.scalar(select(PlayerBadge.id))
    url = f"/api/v1/players/{ids['Ann']}/badges/{award}/revoke"
    assert client.post(url, json={"reason": "cheated"}, headers=tenant.auth).status_code == 200
    assert retro(db, tenant, rules(5, 3)).badges_revoked == 0
    with db.sessions() as session:
        badge = session.scalars(select(PlayerBadge)).one()
        assert badge.revoked_reason == "cheated"


def test_coins_no_longer_earned_are_clawed_back_in_the_ledger(client, db, ctx, tenant):
    ids = history(client, db, tenant)
    assert wallet(db, ids["Ann"])[:2] == (15, 15)
    first = retro(db, tenant, rules(2, 2))  # 2 coins a lesson instead of 5
    assert (first.clawbacks, first.coins_taken, first.coins_forgiven) == (4, 12, 0)
    balance, total, rows = wallet(db, ids["Ann"])
    assert (balance, total) == (6, 6)
    assert [(r[1], r[2]) for r in rows] == [(-3, 12), (-3, 9), (-3, 6)]
    assert rows[0][3].startswith("taken back by rules v")
    assert "rule `lesson` no longer pays 3 of these coins" in rows[0][3]
    assert wallet(db, ids["Bob"])[:2] == (2, 2)

    again = retro(db, tenant, rules(2, 2))
    assert (again.clawbacks, again.credits) == (0, 0)
    up = retro(db, tenant, rules(4, 2))  # and a raise pays the difference, once
    assert (up.clawbacks, up.credits) == (0, 4)
    assert wallet(db, ids["Ann"])[:2] == (12, 12)
    assert retro(db, tenant, rules(4, 2)).credits == 0


def test_spent_coins_are_forgiven_never_below_zero(client, db, ctx, tenant):
    ids = history(client, db, tenant)
    url = f"/api/v1/players/{ids['Ann']}/purchases"
    bought = client.post(url, json={"item": "hat", "request_id": "r1"}, headers=tenant.auth)
    assert bought.status_code == 201 and bought.get_json()["balance_after"] == 3
    first = retro(db, tenant, rules(0, 2))  # lessons pay no coins any more: 15 owed, 3 left
    assert (first.coins_taken, first.coins_forgiven) == (3 + 5, 12)
    balance, total, rows = wallet(db, ids["Ann"])
    assert (balance, total) == (0, 0)
    assert [(r[1], r[2]) for r in rows] == [(-3, 0), (0, 0), (0, 0)]
    assert rows[1][3].endswith("took 0; 5 already spent, forgiven")
    # Settled: a later run does not chase the spent coins, even once Ann has coins again.
    again = retro(db, tenant, rules(0, 2))
    assert (again.clawbacks, again.coins_taken) == (0, 0)
