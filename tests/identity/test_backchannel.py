"""OpenID Connect Back-Channel Logout 1.0, driven by the real provider (``oidc-provider`` with its
``backchannelLogout`` feature): signing out at the IdP ends exactly that sign-in's Questline
session, server-side, so even a copy of the cookie stops working. Then every check of the
spec's section 2.6 on tokens the provider really issued, and on tokens we sign ourselves."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from identity.backchannel import EVENT, validate_logout_token
from identity.errors import SsoRejected
from identity.models import SsoSession
from identity.oidc import OidcClientCache, ProviderMetadata
from tests.identity.conftest import SsoWorld, parse_form, serve, sign_in


def _register_backchannel(world: SsoWorld, uri: str) -> None:
    """Re-register the tenant's client at the provider with a back-channel logout URI."""
    world.idp.add_client(
        client_id=world.client_id,
        client_secret=world.client_secret,
        redirect_uris=[f"{world.base}/sso/{world.tenant.id}/callback"],
        post_logout_redirect_uris=[f"{world.base}/sso/logged-out"],
        grant_types=["authorization_code"],
        response_types=["code"],
        token_endpoint_auth_method="client_secret_basic",
        backchannel_logout_uri=uri,
        backchannel_logout_session_required=True,
    )


def _signed_in(world: SsoWorld, user: str = "alice") -> requests.Session:
    browser = requests.Session()
    response = sign_in(world, browser, user, f"{user}-pw")
    assert response.status_code == 200, response.text[:300]
    return browser


def _me(browser: requests.Session, world: SsoWorld) -> int:
    return browser.get(world.base + "/api/v1/me", timeout=10).status_code


def _logout_at_idp(world: SsoWorld, browser: requests.Session) -> None:
    """The person signs out at the provider itself (another application's logout button)."""
    confirm = browser.get(
        world.idp.issuer + "/session/end", params={"client_id": world.client_id}, timeout=10
    )
    action, fields = parse_form(confirm.text)
    assert fields.get("logout") == "yes"
    done = browser.post(requests.compat.urljoin(confirm.url, action), data=fields, timeout=10)
    assert done.status_code == 200, done.text[:300]


def _copy(browser: requests.Session) -> requests.Session:
    thief = requests.Session()
    thief.cookies.update(browser.cookies)
    return thief


def test_idp_logout_ends_that_sign_in_here(world: SsoWorld) -> None:
    _register_backchannel(world, f"{world.base}/sso/{world.tenant.id}/backchannel-logout")
    first, second = _signed_in(world), _signed_in(world)  # two browsers, two IdP sessions
    copied = _copy(first)
    assert _me(first, world) == _me(copied, world) == _me(second, world) == 200
    with world.db.sessions() as session:
        rows = session.scalars(
            select(SsoSession).where(SsoSession.tenant_id == world.tenant.id)
        ).all()
        assert len(rows) == 2 and all(r.sid for r in rows) and rows[0].sid != rows[1].sid

    _logout_at_idp(world, first)  # the provider POSTs the logout token to Questline

    assert _me(first, world) == 401
    assert _me(copied, world) == 401  # ended server-side: a copied cookie is dead too
    assert _me(second, world) == 200  # the other sign-in (another sid) goes on
    with world.db.sessions() as session:
        ended = session.scalars(
            select(SsoSession.ended_at).where(SsoSession.tenant_id == world.tenant.id)
        ).all()
        assert sorted(e is None for e in ended) == [False, True]


def test_rp_logout_ends_the_session_for_a_copied_cookie_too(world: SsoWorld) -> None:
    browser = _signed_in(world)
    copied = _copy(browser)
    browser.post(world.base + "/sso/logout", timeout=10, allow_redirects=False)
    assert _me(copied, world) == 401


class Capture:
    """Stands at the client's back-channel URI to catch the provider's real logout tokens."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.tokens.append(Request(environ).form["logout_token"])
        return Response("", status=200)(environ, start_response)


def _post(world: SsoWorld, token: str) -> requests.Response:
    return requests.post(
        f"{world.base}/sso/{world.tenant.id}/backchannel-logout",
        data={"logout_token": token},
        timeout=10,
    )


def test_real_tokens_replay_and_an_id_token_in_disguise(world: SsoWorld) -> None:
    capture = Capture()
    with serve(capture) as catcher:  # type: ignore[arg-type]
        _register_backchannel(world, catcher + "/bcl")
        browser = _signed_in(world)
        serializer = world.app.session_interface.get_signing_serializer(world.app)  # type: ignore[attr-defined]
        id_token = serializer.loads(browser.cookies["session"])["ql_user"]["id_token"]
        _logout_at_idp(world, browser)
    (token,) = capture.tokens
    assert _me(browser, world) == 200  # the provider told the catcher, not Questline

    # An ID token is signed by the same keys, for the same audience: refused (nonce, events).
    disguised = _post(world, id_token)
    assert disguised.status_code == 400 and disguised.json()["error"] == "invalid_logout_token"
    assert _me(browser, world) == 200

    accepted = _post(world, token)
    assert accepted.status_code == 200 and accepted.headers["Cache-Control"] == "no-store"
    assert _me(browser, world) == 401
    replay = _post(world, token)
    assert replay.status_code == 400 and "already used" in replay.json()["message"]

    assert (
        requests.post(
            f"{world.base}/sso/{world.tenant.id}/backchannel-logout", timeout=10
        ).status_code
        == 400
    )
    assert _post(world, "not.a.jwt").status_code == 400
    other = f"{world.base}/sso/999999999/backchannel-logout"
    assert requests.post(other, data={"logout_token": token}, timeout=10).status_code == 404


# --- the validator, on tokens we sign (a key served as the provider's JWKS) ------------------

ISSUER = "https://idp.example.test"
CLIENT = "questline-client"


@pytest.fixture(scope="module")
def provider_key() -> Iterator[tuple[RSAKey, ProviderMetadata]]:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    jwks = json.dumps(KeySet([key]).as_dict(private=False))

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return Response(jwks, content_type="application/json")(environ, start_response)

    with serve(app) as base:  # type: ignore[arg-type]
        meta = ProviderMetadata(ISSUER, ISSUER + "/auth", ISSUER + "/token", base, None, None)
        yield key, meta


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sub": "alice",
        "sid": "sid-1",
        "events": {EVENT: {}},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _check(provider_key: tuple[RSAKey, ProviderMetadata], claims: dict[str, Any], **h: Any) -> Any:
    key, meta = provider_key
    header = {"alg": "RS256", "kid": "k1", "typ": "logout+jwt", **h}
    token = jwt.encode(header, claims, key)
    return validate_logout_token(
        token, cache=OidcClientCache(), meta=meta, client_id=CLIENT, now=time.time()
    )


def test_a_good_token_passes(provider_key: Any) -> None:
    assert _check(provider_key, _claims())["sid"] == "sid-1"
    assert _check(provider_key, _claims(sid=None))["sub"] == "alice"  # sub alone will do
    assert _check(provider_key, _claims(sub=None, exp=None))["sid"] == "sid-1"


@pytest.mark.parametrize(
    ("changes", "header", "reason"),
    [
        ({"iss": "https://evil.test"}, {}, "iss"),
        ({"aud": "someone-else"}, {}, "aud"),
        ({"iat": None}, {}, "iat"),
        ({"iat": int(time.time()) + 3600}, {}, "future"),
        ({"iat": int(time.time()) - 3600, "exp": int(time.time()) + 60}, {}, "issued more"),
        ({"exp": int(time.time()) - 3600}, {}, "expired"),
        ({"events": None}, {}, "events"),
        ({"events": {"http://example.test/other": {}}}, {}, "events"),
        ({"nonce": "n-1"}, {}, "nonce"),
        ({"sub": None, "sid": None}, {}, "neither"),
        ({"sub": 42}, {}, "sub"),
        ({"jti": None}, {}, "jti"),
        ({}, {"typ": "JWT"}, "typ"),
    ],
)
def test_each_check_of_section_2_6(
    provider_key: Any, changes: dict[str, Any], header: dict[str, Any], reason: str
) -> None:
    with pytest.raises(SsoRejected) as refused:
        _check(provider_key, _claims(**changes), **header)
    assert reason in refused.value.message and refused.value.status == 400


def test_another_key_with_the_providers_kid_is_refused(provider_key: Any) -> None:
    _key, meta = provider_key
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, _claims(), stranger)
    with pytest.raises(SsoRejected) as refused:
        validate_logout_token(
            token, cache=OidcClientCache(), meta=meta, client_id=CLIENT, now=time.time()
        )
    assert "signature" in refused.value.message
