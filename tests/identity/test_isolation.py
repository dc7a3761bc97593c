"""Roles and tenant isolation through the API: every cross-tenant read or write is a 404, every
cross-role one a 403, whichever credential is used (tenant key, SSO session, service token)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests
from flask import Flask

from questline.db import Database
from questline.models import Player, PlayerCourseStats
from tests.identity.conftest import Idp, SsoWorld, make_world, sign_in
from workers.context import Context


@dataclass
class Two:
    a: SsoWorld
    b: SsoWorld
    other_a: int  # a learner of tenant A, in course-1
    stranger_a: int  # a learner of tenant A in no course
    player_b: int


def _player(db: Database, tenant_id: int, name: str, course: str | None = None) -> int:
    with db.session() as session:
        player = Player(tenant_id=tenant_id, display_name=name, xp=10)
        session.add(player)
        session.flush()
        if course:
            session.add(
                PlayerCourseStats(tenant_id=tenant_id, course=course, player_id=player.id, xp=10)
            )
        return player.id


@pytest.fixture
def two(idp: Idp, sso_app: tuple[Flask, Context, str], committed_db: Database) -> Two:
    app, ctx, base = sso_app
    a = make_world(idp, app, ctx, committed_db, base, admin_group="questline-admins")
    b = make_world(idp, app, ctx, committed_db, base)
    return Two(
        a,
        b,
        _player(committed_db, a.tenant.id, "Other A", "course-1"),
        _player(committed_db, a.tenant.id, "Stranger A"),
        _player(committed_db, b.tenant.id, "Player B", "course-1"),
    )


def _browser(world: SsoWorld, user: str) -> requests.Session:
    browser = requests.Session()
    response = sign_in(world, browser, user, f"{user}-pw")
    assert response.status_code == 200, response.text[:300]
    return browser


def _routes(player_id: int) -> list[tuple[str, str, dict[str, object] | None]]:
    """Every identity-related route that names a player, with a body where it takes one."""
    return [
        ("GET", f"/api/v1/players/{player_id}", None),
        ("GET", f"/api/v1/identity/players/{player_id}", None),
        ("GET", f"/api/v1/identity/players/{player_id}/export", None),
        (
            "POST",
            f"/api/v1/identity/players/{player_id}/identities",
            {"kind": "actor", "value": "x"},
        ),
        ("DELETE", f"/api/v1/identity/players/{player_id}/identities/1", None),
        ("PUT", f"/api/v1/identity/players/{player_id}/roles", {"role": "admin"}),
        ("DELETE", f"/api/v1/identity/players/{player_id}/roles", {"role": "admin"}),
        ("DELETE", f"/api/v1/players/{player_id}", None),
    ]


def _call(
    who: requests.Session | dict[str, str], base: str, method: str, path: str, body: object
) -> requests.Response:
    if isinstance(who, requests.Session):
        return who.request(method, base + path, json=body, timeout=10)
    return requests.request(method, base + path, json=body, headers=who, timeout=10)


def test_tenant_key_cannot_touch_another_tenants_player(two: Two) -> None:
    for method, path, body in _routes(two.player_b):
        response = _call(two.a.tenant.auth, two.a.base, method, path, body)
        assert response.status_code == 404, (method, path, response.text)
    merge = {"source": two.player_b, "target": two.other_a}
    response = _call(two.a.tenant.auth, two.a.base, "POST", "/api/v1/identity/merge", merge)
    assert response.status_code == 404


def test_learner_session_sees_only_itself(two: Two) -> None:
    alice = _browser(two.a, "alice")
    me = alice.get(two.a.base + "/api/v1/me", timeout=10)
    assert me.status_code == 200 and me.json()["display_name"] == "Alice Example"
    mine = me.json()["id"]
    assert alice.get(f"{two.a.base}/api/v1/identity/players/{mine}", timeout=10).status_code == 200
    assert (
        alice.get(f"{two.a.base}/api/v1/identity/players/{mine}/export", timeout=10).status_code
        == 200
    )
    for method, path, body in _routes(two.other_a):
        response = _call(alice, two.a.base, method, path, body)
        # The tenant-key-only routes (/api/v1/players/...) answer 401 to a cookie; the identity
        # routes know the learner and answer 403.
        expected = 401 if path == f"/api/v1/players/{two.other_a}" and method == "GET" else 403
        assert response.status_code == expected, (method, path, response.text)
    for method, path, body in _routes(two.player_b):
        response = _call(alice, two.a.base, method, path, body)
        # Writes fail on the role first (403, which says nothing about B's player); reads that a
        # learner may make for themselves find no such player in their tenant (404).
        assert response.status_code in (401, 403, 404), (method, path, response.text)
        if "/identity/" in path and method == "GET":
            assert response.status_code == 404, (method, path)
    for method, path in (("GET", "/api/v1/identity/sso"), ("GET", "/api/v1/identity/audit")):
        assert _call(alice, two.a.base, method, path, None).status_code == 403
    assert alice.get(two.a.base + "/admin/identity", timeout=10).status_code == 403
    anonymous = requests.get(two.a.base + "/admin/identity", timeout=10, allow_redirects=False)
    assert anonymous.status_code == 302
    put = _call(alice, two.a.base, "PUT", "/api/v1/identity/sso", {"link_by_email": False})
    assert put.status_code == 403
    merge = {"source": two.other_a, "target": mine}
    assert _call(alice, two.a.base, "POST", "/api/v1/identity/merge", merge).status_code == 403


def test_instructor_reads_only_their_courses_learners(two: Two) -> None:
    alice = _browser(two.a, "alice")
    mine = alice.get(two.a.base + "/api/v1/me", timeout=10).json()["id"]
    grant = requests.put(
        f"{two.a.base}/api/v1/identity/players/{mine}/roles",
        json={"role": "instructor", "course": "course-1"},
        headers=two.a.tenant.auth,
        timeout=10,
    )
    assert grant.status_code == 200
    read = alice.get(f"{two.a.base}/api/v1/identity/players/{two.other_a}", timeout=10)
    assert read.status_code == 200 and "identities" not in read.json()
    assert (
        alice.get(f"{two.a.base}/api/v1/identity/players/{two.stranger_a}", timeout=10).status_code
        == 403
    )
    # Same course id in another tenant: still not theirs.
    assert (
        alice.get(f"{two.a.base}/api/v1/identity/players/{two.player_b}", timeout=10).status_code
        == 404
    )
    # An instructor is not an admin.
    assert alice.get(f"{two.a.base}/api/v1/identity/audit", timeout=10).status_code == 403


def test_idp_admin_group_makes_a_tenant_admin_of_that_tenant_only(two: Two) -> None:
    dave = _browser(two.a, "dave")
    assert "You are a tenant admin" in dave.get(two.a.base + "/me", timeout=10).text
    admin_page = dave.get(two.a.base + "/admin/identity", timeout=10)
    assert admin_page.status_code == 200 and "questline-admins" in admin_page.text
    assert two.a.client_secret not in admin_page.text and "sso_link" in admin_page.text
    sso = dave.get(two.a.base + "/api/v1/identity/sso", timeout=10)
    assert sso.status_code == 200 and sso.json()["admin_group"] == "questline-admins"
    assert (
        dave.get(f"{two.a.base}/api/v1/identity/players/{two.other_a}", timeout=10).status_code
        == 200
    )
    for method, path, body in _routes(two.player_b):
        if path.startswith("/api/v1/players/") and method == "GET":
            continue  # key-only route: 401 for any cookie
        response = _call(dave, two.a.base, method, path, body)
        assert response.status_code == 404, (method, path, response.text)
    # A browser-session write must be JSON (no cross-site form posts).
    form = dave.put(two.a.base + "/api/v1/identity/sso", data={"scopes": "openid"}, timeout=10)
    assert form.status_code == 401
    # The same person in tenant B (no admin group there) is a learner.
    dave_b = requests.Session()
    assert sign_in(two.b, dave_b, "dave", "dave-pw").status_code == 200
    assert dave_b.get(two.b.base + "/api/v1/identity/sso", timeout=10).status_code == 403


def test_no_credentials_is_401(two: Two) -> None:
    for method, path, body in _routes(two.other_a):
        response = requests.request(method, two.a.base + path, json=body, timeout=10)
        assert response.status_code == 401, (method, path)
