"""OpenID Connect Back-Channel Logout 1.0: the provider tells Questline, server to server, that
a person signed out there, and Questline ends that person's sessions.

The provider POSTs ``logout_token`` (a signed JWT) to ``/sso/<tenant>/backchannel-logout``.
It is validated as section 2.6 of the spec says: signature against the provider's JWKS (with
the same key-rotation handling as ID tokens), ``iss`` the tenant's issuer, ``aud`` naming the
tenant's client, ``iat`` present and recent, ``exp`` (when present) not passed, an ``events``
claim holding the back-channel-logout event, a ``sid`` or a ``sub``, **no** ``nonce`` (so an ID
token can never pass for a logout token), ``typ`` (when present) ``logout+jwt``, and a ``jti``
not seen before from that issuer. Then the sessions it names end (identity/sso_sessions.py).
"""

from __future__ import annotations

from typing import Any

from identity.errors import SsoRejected
from identity.oidc import OidcClientCache, ProviderMetadata, audiences, verify_jwt

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TYPES = ("logout+jwt", "application/logout+jwt")
# A logout token is sent the moment the person signs out; one older than this is refused, which
# also bounds how long accepted jtis must be remembered to refuse a replay.
MAX_AGE_SECONDS = 600
LEEWAY_SECONDS = 60


def _refuse(message: str) -> SsoRejected:
    return SsoRejected("invalid_logout_token", message)


def validate_logout_token(
    token: str,
    *,
    cache: OidcClientCache,
    meta: ProviderMetadata,
    client_id: str,
    now: float,
) -> dict[str, Any]:
    """The logout token's claims after every check of Back-Channel Logout 1.0 section 2.6."""
    header, claims = verify_jwt(token, cache, meta.jwks_uri)
    typ = header.get("typ")
    if typ is not None and str(typ).lower() not in LOGOUT_TYPES:
        raise _refuse(f"typ {typ!r} is not logout+jwt")
    if claims.get("iss") != meta.issuer:
        raise _refuse(f"iss {claims.get('iss')!r} is not {meta.issuer!r}")
    if client_id not in audiences(claims):
        raise _refuse("the token's aud does not name this tenant's client")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise _refuse("the token has no iat")
    if iat - LEEWAY_SECONDS > now:
        raise _refuse("the token's iat is in the future")
    if now - iat > MAX_AGE_SECONDS + LEEWAY_SECONDS:
        raise _refuse(f"the token was issued more than {MAX_AGE_SECONDS} s ago")
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int | float) or exp + LEEWAY_SECONDS < now):
        raise _refuse("the token has expired")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(EVENT), dict):
        raise _refuse(f"the events claim lacks {EVENT}")
    if "nonce" in claims:
        raise _refuse("a logout token must not carry a nonce (is this an ID token?)")
    sub, sid = claims.get("sub"), claims.get("sid")
    if not (isinstance(sub, str) and sub) and not (isinstance(sid, str) and sid):
        raise _refuse("the token names neither a sid nor a sub")
    for name in ("sub", "sid"):
        if name in claims and not (isinstance(claims[name], str) and claims[name]):
            raise _refuse(f"the token's {name} is not a string")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _refuse("the token has no jti")
    return claims
