"""ID token validation on real tokens from the provider, tampered in every way that matters,
the provider rotating its keys, and client-credentials JWT access tokens on the API."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from identity.errors import SsoRejected
from identity.oidc import OidcClientCache, ProviderMetadata, validate_id_token
from tests.identity.conftest import SsoWorld, sign_in


def _session_user(world: SsoWorld, browser: requests.Session) -> dict[str, Any]:
    serializer = world.app.session_interface.get_signing_serializer(world.app)  # type: ignore[attr-defined]
    return dict(serializer.loads(browser.cookies["session"])["ql_user"])


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unb64(segment: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


@pytest.fixture
def real_token(world: SsoWorld) -> tuple[str, dict[str, Any], ProviderMetadata, OidcClientCache]:
    browser = requests.Session()
    assert sign_in(world, browser, "alice", "alice-pw").status_code == 200
    token = _session_user(world, browser)["id_token"]
    cache = OidcClientCache()
    return token, _unb64(_segments(token)[1]), cache.metadata(world.idp.issuer), cache


def _check(world: SsoWorld, real_token: Any, token: str, **overrides: Any) -> dict[str, Any]:
    _, claims, meta, cache = real_token
    kwargs: dict[str, Any] = {
        "cache": cache,
        "meta": meta,
        "client_id": world.client_id,
        "nonce": claims["nonce"],
    }
    kwargs.update(overrides)
    return validate_id_token(token, **kwargs)


def test_the_real_token_validates(world: SsoWorld, real_token: Any) -> None:
    claims = _check(world, real_token, real_token[0])
    assert claims["sub"] == "alice" and claims["iss"] == world.idp.issuer


def test_changed_claims_break_the_signature(world: SsoWorld, real_token: Any) -> None:
    token, claims = real_token[0], real_token[1]
    header, _, signature = _segments(token)
    forged = f"{header}.{_b64({**claims, 'sub': 'dave'})}.{signature}"
    with pytest.raises(SsoRejected, match="signature"):
        _check(world, real_token, forged)


def test_token_signed_by_another_key_with_the_providers_kid(
    world: SsoWorld, real_token: Any
) -> None:
    token, claims = real_token[0], real_token[1]
    kid = _unb64(_segments(token)[0])["kid"]
    attacker = RSAKey.generate_key(2048)
    forged = jwt.encode({"alg": "RS256", "kid": kid}, claims, attacker)
    with pytest.raises(SsoRejected, match="signature"):
        _check(world, real_token, forged)


def test_unsigned_token_is_refused(world: SsoWorld, real_token: Any) -> None:
    claims = real_token[1]
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    with pytest.raises(SsoRejected):
        _check(world, real_token, forged)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_id": "someone-else"}, "aud"),
        ({"nonce": "a-different-login"}, "nonce"),
        ({"now": time.time() + 3600}, "expired"),
    ],
)
def test_wrong_audience_nonce_or_time(
    world: SsoWorld, real_token: Any, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(SsoRejected, match=message):
        _check(world, real_token, real_token[0], **overrides)


def test_wrong_issuer(world: SsoWorld, real_token: Any) -> None:
    meta = real_token[2]
    other = ProviderMetadata(**{**meta.__dict__, "issuer": "http://127.0.0.1:1"})
    with pytest.raises(SsoRejected, match="iss"):
        _check(world, real_token, real_token[0], meta=other)


def test_login_still_works_after_the_provider_rotates_keys(world: SsoWorld) -> None:
    first = requests.Session()
    assert sign_in(world, first, "alice", "alice-pw").status_code == 200
    old_kid = _unb64(_segments(_session_user(world, first)["id_token"])[0])["kid"]
    new_kid = world.idp.rotate_keys()[0]
    assert new_kid != old_kid
    # The app's cached key set lacks the new kid; it must fetch the set again (no throttle wait
    # in a test: the throttle is for made-up kids, tested below).
    world.app.extensions["questline_identity"].oidc.min_refetch_seconds = 0
    second = requests.Session()
    response = sign_in(world, second, "alice", "alice-pw")
    assert response.status_code == 200, response.text[:300]
    assert _unb64(_segments(_session_user(world, second)["id_token"])[0])["kid"] == new_kid


def test_unknown_kid_refetch_is_throttled(world: SsoWorld) -> None:
    cache = OidcClientCache(min_refetch_seconds=60)
    uri = cache.metadata(world.idp.issuer).jwks_uri
    first = cache.key_set(uri, kid=None)
    assert cache.key_set(uri, kid="made-up") is first  # not refetched within the throttle
    cache.min_refetch_seconds = 0
    assert cache.key_set(uri, kid="made-up") is not first


def _cc_token(world: SsoWorld, scope: str, resource: str | None = None) -> str:
    client_id = f"svc-{world.client_id}"
    world.idp.add_client(
        client_id=client_id,
        client_secret="svc-secret",
        grant_types=["client_credentials"],
        response_types=[],
        redirect_uris=[],
    )
    response = requests.post(
        world.idp.issuer + "/token",
        auth=(client_id, "svc-secret"),
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "resource": resource or world.api_audience,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _player(world: SsoWorld) -> int:
    browser = requests.Session()
    sign_in(world, browser, "alice", "alice-pw")
    return int(_session_user(world, browser)["player_id"])


def test_client_credentials_token_reads_and_admin_scope(world: SsoWorld) -> None:
    player_id = _player(world)
    read = {"Authorization": f"Bearer {_cc_token(world, 'questline:read')}"}
    url = f"{world.base}/api/v1/identity/players/{player_id}"
    assert requests.get(url, headers=read, timeout=10).status_code == 200
    assert (
        requests.get(f"{world.base}/api/v1/identity/sso", headers=read, timeout=10).status_code
        == 403
    )
    gone = requests.delete(f"{world.base}/api/v1/players/{player_id}", headers=read, timeout=10)
    assert gone.status_code == 403
    admin = {"Authorization": f"Bearer {_cc_token(world, 'questline:admin')}"}
    sso = requests.get(f"{world.base}/api/v1/identity/sso", headers=admin, timeout=10)
    assert sso.status_code == 200 and sso.json()["client_id"] == world.client_id
    assert "client_secret" not in sso.json()


def test_client_credentials_token_refused_when_tampered_or_for_another_audience(
    world: SsoWorld,
) -> None:
    player_id = _player(world)
    url = f"{world.base}/api/v1/identity/players/{player_id}"
    token = _cc_token(world, "questline:admin")
    header, payload, signature = _segments(token)
    claims = _unb64(payload)
    forged = f"{header}.{_b64({**claims, 'scope': 'questline:admin questline:read x'})}.{signature}"
    response = requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=10)
    assert response.status_code == 401 and "signature" in response.json()["message"]
    stranger = _cc_token(world, "questline:admin", resource="https://api.elsewhere.test/")
    response = requests.get(url, headers={"Authorization": f"Bearer {stranger}"}, timeout=10)
    assert response.status_code == 401
    garbage = requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert garbage.status_code == 401


def test_client_credentials_tokens_on_the_core_api(world: SsoWorld) -> None:
    """CRMs and scripts may call ingest and the reads with the IdP's tokens, scope-checked."""
    read = {"Authorization": f"Bearer {_cc_token(world, 'questline:read')}"}
    board = requests.get(f"{world.base}/api/v1/leaderboards/tenant", headers=read, timeout=10)
    assert board.status_code == 200, board.text
    item = {
        "id": "crm-1",
        "source": "crm",
        "type": "deal.won",
        "actor": {"id": "owner-7"},
        "occurred_at": "2026-11-20T10:00:00Z",
    }
    refused = requests.post(f"{world.base}/api/v1/events", json=item, headers=read, timeout=10)
    assert refused.status_code == 403 and "questline:events" in refused.json()["message"]
    events = {"Authorization": f"Bearer {_cc_token(world, 'questline:events')}"}
    stored = requests.post(f"{world.base}/api/v1/events", json=item, headers=events, timeout=10)
    assert stored.status_code == 202 and stored.json()["accepted"] == ["crm-1"]
    garbage = requests.get(
        f"{world.base}/api/v1/leaderboards/tenant",
        headers={"Authorization": "Bearer not-a-token"},
        timeout=10,
    )
    assert garbage.status_code == 401
