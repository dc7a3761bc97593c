"""Bad input to the currency, shop and quest endpoints: always a clear 4xx, never a 500."""

from __future__ import annotations

import pytest

from tests.rules.test_economy import RULES, earn, setup


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "purchases", {"json": ["hat"]}, 422),
        ("post", "purchases", {"json": {"item": 5, "request_id": "a"}}, 422),
        ("post", "purchases", {"json": {"item": "hat", "request_id": "x" * 201}}, 422),
        ("post", "purchases", {"json": {"item": "hat", "request_id": 7}}, 422),
        ("post", "purchases", {"data": b"\xff\xfe", "content_type": "application/json"}, 422),
        ("get", "wallet?limit=abc", {}, 400),
        ("get", "wallet?limit=0", {}, 400),
        ("post", "wallet/grant", {"json": {"amount": True, "reason": "r", "request_id": "a"}}, 422),
        (
            "post",
            "wallet/grant",
            {"json": {"amount": 10**9, "reason": "r", "request_id": "a"}},
            422,
        ),
        ("post", "wallet/grant", {"json": {"amount": 5, "reason": "r"}}, 422),
        ("post", "quests/x/claim", {"data": b"{not json", "content_type": "application/json"}, 404),
        ("post", "quests/" + "q" * 300 + "/claim", {}, 404),
        ("post", "quests/x/claim", {"json": {"period": ["2026"]}}, 422),
    ],
)
def test_bad_input_is_a_4xx(client, db, ctx, tenant, method, path, kwargs, status):
    setup(db, tenant, RULES)
    pid = earn(client, tenant, 1)
    response = getattr(client, method)(
        f"/api/v1/players/{pid}/{path}", headers=tenant.auth, **kwargs
    )
    assert response.status_code == status, response.get_json()
    assert response.get_json()["message"]


def test_unknown_player_is_404(client, db, ctx, tenant):
    setup(db, tenant, RULES)
    for method, path, body in [
        ("get", "wallet", None),
        ("get", "quests", None),
        ("post", "purchases", {"item": "hat", "request_id": "a"}),
        ("post", "wallet/grant", {"amount": 1, "reason": "r", "request_id": "a"}),
    ]:
        response = getattr(client, method)(
            f"/api/v1/players/999999/{path}", headers=tenant.auth, json=body
        )
        assert response.status_code == 404, (path, response.get_json())
