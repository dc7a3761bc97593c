"""The OpenID Connect relying party: discovery, the provider's key set, and token validation.

authlib's ``OAuth2Session`` builds the authorization URL (with PKCE, S256) and exchanges the code;
joserfc (authlib's JOSE library) checks signatures. Every check the core spec asks of a relying
party is made here, in one place, and each failure raises ``SsoRejected`` naming what was wrong:
signature against the provider's JWKS (refetched once when an unknown ``kid`` shows up, which is
how a key rotation looks from our side), ``iss``, ``aud``/``azp``, ``nonce``, ``exp``/``iat``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from identity.errors import SsoRejected

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
HTTP_TIMEOUT = 10.0


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of a provider's discovery document the relying party uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None


def _get_json(http: requests.Session, url: str, what: str) -> dict[str, Any]:
    try:
        response = http.get(url, timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        raise SsoRejected("idp_unreachable", f"could not fetch the {what}: {exc}", 502) from None
    if response.status_code != 200:
        raise SsoRejected(
            "idp_error", f"the {what} answered HTTP {response.status_code}", status=502
        )
    try:
        data = response.json()
    except ValueError:
        raise SsoRejected("idp_error", f"the {what} is not JSON", status=502) from None
    if not isinstance(data, dict):
        raise SsoRejected("idp_error", f"the {what} is not a JSON object", status=502)
    return data


@dataclass
class OidcClientCache:
    """Discovery documents and key sets per provider, cached in-process.

    A key set is refetched when a token names a ``kid`` it does not hold (the provider rotated
    its keys), but not more often than ``min_refetch_seconds``, so tokens with made-up ``kid``
    values cannot make us hammer the provider.
    """

    http: requests.Session = field(default_factory=requests.Session)
    discovery_seconds: float = 3600.0
    min_refetch_seconds: float = 5.0
    _metadata: dict[str, tuple[ProviderMetadata, float]] = field(default_factory=dict)
    _keys: dict[str, tuple[KeySet, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def metadata(self, issuer: str) -> ProviderMetadata:
        now = time.monotonic()
        with self._lock:
            hit = self._metadata.get(issuer)
        if hit is not None and now - hit[1] < self.discovery_seconds:
            return hit[0]
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = _get_json(self.http, url, "provider's discovery document")
        if doc.get("issuer") != issuer:
            # OpenID Connect Discovery 4.3: the issuer in the document must be the one we asked.
            raise SsoRejected(
                "issuer_mismatch",
                f"discovery says issuer {doc.get('issuer')!r}, configured {issuer!r}",
                status=502,
            )
        try:
            meta = ProviderMetadata(
                issuer=issuer,
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                userinfo_endpoint=doc.get("userinfo_endpoint"),
                end_session_endpoint=doc.get("end_session_endpoint"),
            )
        except KeyError as exc:
            raise SsoRejected(
                "idp_error", f"discovery document lacks {exc.args[0]}", status=502
            ) from None
        with self._lock:
            self._metadata[issuer] = (meta, now)
        return meta

    def key_set(self, jwks_uri: str, *, kid: str | None) -> KeySet:
        """The provider's keys, refetched if ``kid`` is not among the cached ones."""
        now = time.monotonic()
        with self._lock:
            hit = self._keys.get(jwks_uri)
        if hit is not None:
            keys, fetched = hit
            known = kid is None or any(k.kid == kid for k in keys.keys)
            if known or now - fetched < self.min_refetch_seconds:
                return keys
        data = _get_json(self.http, jwks_uri, "provider's key set (JWKS)")
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise SsoRejected("idp_error", f"the provider's JWKS is unusable: {exc}", 502) from None
        with self._lock:
            self._keys[jwks_uri] = (keys, now)
        return keys

    def session(self, *, client_id: str, client_secret: str, scope: str, redirect_uri: str) -> Any:
        """An authlib OAuth2 session for one tenant's client, PKCE with S256."""
        session = OAuth2Session(
            client_id,
            client_secret,
            scope=scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic",
        )
        session.timeout = HTTP_TIMEOUT
        return session


def verify_jwt(
    token: str, cache: OidcClientCache, jwks_uri: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a JWT's signature against the provider's key set; return (header, claims)."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise SsoRejected("invalid_token", "the token is not a signed JWT (JWS compact form)")
    try:
        kid = jws.extract_compact(token.encode()).headers().get("kid")
    except (JoseError, ValueError, TypeError):
        raise SsoRejected("invalid_token", "the token's header is not valid") from None
    keys = cache.key_set(jwks_uri, kid=kid)
    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except JoseError as exc:
        raise SsoRejected(
            "invalid_token", f"signature check failed: {exc.error or type(exc).__name__}"
        ) from None
    except (ValueError, TypeError) as exc:
        raise SsoRejected("invalid_token", f"the token could not be decoded: {exc}") from None
    return dict(decoded.header), dict(decoded.claims)


def check_times(claims: dict[str, Any], now: float, leeway: int) -> None:
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float):
        raise SsoRejected("invalid_token", "the token has no exp")
    if exp + leeway < now:
        raise SsoRejected("token_expired", "the token has expired")
    if iat is not None and (not isinstance(iat, int | float) or iat - leeway > now):
        raise SsoRejected("invalid_token", "the token's iat is in the future")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf - leeway > now:
        raise SsoRejected("invalid_token", "the token is not valid yet (nbf)")


def audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    return []


def validate_id_token(
    token: str,
    *,
    cache: OidcClientCache,
    meta: ProviderMetadata,
    client_id: str,
    nonce: str,
    now: float | None = None,
    leeway: int = 60,
) -> dict[str, Any]:
    """An ID token's claims after every check of OpenID Connect Core 3.1.3.7, or SsoRejected."""
    _header, claims = verify_jwt(token, cache, meta.jwks_uri)
    if claims.get("iss") != meta.issuer:
        raise SsoRejected("invalid_token", f"iss {claims.get('iss')!r} is not {meta.issuer!r}")
    aud = audiences(claims)
    if client_id not in aud:
        raise SsoRejected("invalid_token", "the token's aud does not name this client")
    if len(aud) > 1 and claims.get("azp") != client_id:
        raise SsoRejected("invalid_token", "several audiences and azp is not this client")
    if not nonce or claims.get("nonce") != nonce:
        raise SsoRejected("invalid_token", "the nonce does not match this login")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise SsoRejected("invalid_token", "the token has no sub")
    check_times(claims, time.time() if now is None else now, leeway)
    return claims
