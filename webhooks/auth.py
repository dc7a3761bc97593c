"""Shared-secret and signed-JWT checks for sources that do not sign the body with an HMAC."""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any

from questline.errors import ServiceUnavailable
from webhooks.connections import ConnectionInfo
from webhooks.delivery import Delivery
from webhooks.errors import BadSignature
from webhooks.signatures import token_matches


def require_bearer(delivery: Delivery, conn: ConnectionInfo, *, allow_query: bool = False) -> None:
    """``Authorization: Bearer <secret>`` (or ``?token=`` where the sender only takes a URL)."""
    scheme, _, token = delivery.headers.get("authorization", "").partition(" ")
    offered = token.strip() if scheme.lower() == "bearer" else ""
    if not offered and allow_query:
        offered = delivery.query.get("token", "")
    if not offered:
        raise BadSignature("send the connection secret as 'Authorization: Bearer <secret>'")
    if not token_matches(conn.secrets, offered):
        raise BadSignature("the bearer token does not match this connection")


def require_basic(delivery: Delivery, conn: ConnectionInfo) -> None:
    """HTTP Basic as an LRS takes it: user = the connection id, password = its secret."""
    scheme, _, blob = delivery.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not blob.strip():
        raise BadSignature("send 'Authorization: Basic <connection id:secret>'")
    try:
        user, sep, password = base64.b64decode(blob.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        raise BadSignature("the Basic credentials are not base64 of user:password") from None
    user_ok = token_matches([conn.public_id], user)
    if not sep or not (token_matches(conn.secrets, password) and user_ok):
        raise BadSignature("the Basic credentials do not match this connection")


_jwk_clients: dict[str, Any] = {}
_jwk_lock = threading.Lock()


def _jwk_client(url: str) -> Any:
    import jwt

    with _jwk_lock:
        client = _jwk_clients.get(url)
        if client is None:
            # Canvas rotates its keys monthly: cache the set for an hour, refetch on unknown kid.
            client = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)
            _jwk_clients[url] = client
        return client


def verify_jwt(token: str, jwks_url: str) -> dict[str, Any]:
    """The claims of an RS256 JWT whose ``kid`` is in the JWKS at ``jwks_url``."""
    import jwt

    try:
        key = _jwk_client(jwks_url).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            options={"verify_aud": False, "require": []},
            leeway=300,
        )
    except jwt.PyJWKClientConnectionError:
        # A dependency is down, not the sender's fault: 503 so the sender retries later.
        raise ServiceUnavailable("the JWKS could not be fetched to verify the event") from None
    except (jwt.PyJWTError, ValueError) as exc:
        raise BadSignature(f"the signed event does not verify: {str(exc)[:120]}") from None
    if not isinstance(claims, dict):
        raise BadSignature("the signed event's claims are not an object")
    return claims
