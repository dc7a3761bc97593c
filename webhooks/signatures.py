"""Signature schemes on the raw bytes, compared in constant time.

HubSpot v1/v2/v3 and Standard Webhooks. Each ``verify_*`` raises ``BadSignature`` with a reason
and takes the clock as an argument (``now``) so tests can replay the published vectors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

from webhooks.errors import BadSignature

TOLERANCE_SECONDS = 300  # HubSpot v3 and the Standard Webhooks libraries both use 5 minutes

# HubSpot decodes these percent-escapes in the URI before signing (docs, "Validating requests").
_HUBSPOT_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


def _equal(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def hubspot_uri(url: str) -> str:
    """The URI as HubSpot signs it: the full URL with the listed escapes decoded."""
    for escaped, char in _HUBSPOT_DECODE.items():
        url = url.replace(escaped, char).replace(escaped.lower(), char)
    return url


def hubspot_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def hubspot_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_hubspot(
    secrets: Iterable[str],
    *,
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    now: float,
) -> None:
    """Accept a v3 signature (with a fresh timestamp), else a v1/v2 one, under any secret."""
    uri = hubspot_uri(url)
    v3 = headers.get("x-hubspot-signature-v3")
    keys = list(secrets)
    if v3:
        stamp = headers.get("x-hubspot-request-timestamp", "")
        if not stamp.isdigit():
            raise BadSignature("X-HubSpot-Request-Timestamp is missing or not a number")
        if abs(now - int(stamp) / 1000) > TOLERANCE_SECONDS:
            raise BadSignature("X-HubSpot-Request-Timestamp is more than 5 minutes off")
        if any(_equal(hubspot_v3(k, method, uri, body, stamp), v3) for k in keys):
            return
        raise BadSignature("X-HubSpot-Signature-v3 does not match")
    signature = headers.get("x-hubspot-signature")
    if not signature:
        raise BadSignature("no X-HubSpot-Signature-v3 or X-HubSpot-Signature header")
    version = headers.get("x-hubspot-signature-version", "v1").lower()
    if version == "v1":
        ok = any(_equal(hubspot_v1(k, body), signature.lower()) for k in keys)
    elif version == "v2":
        ok = any(_equal(hubspot_v2(k, method, uri, body), signature.lower()) for k in keys)
    else:
        raise BadSignature(f"unknown X-HubSpot-Signature-Version {version[:10]!r}")
    if not ok:
        raise BadSignature(f"X-HubSpot-Signature ({version}) does not match")


def standard_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the base64 after the prefix."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from exc


def standard_sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`` as the spec defines it."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard(
    secrets: Iterable[str], *, headers: dict[str, str], body: bytes, now: float
) -> str:
    """Verify the Standard Webhooks headers; return the ``webhook-id`` (the idempotency key)."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    header = headers.get("webhook-signature", "")
    if not msg_id or not stamp or not header:
        raise BadSignature("webhook-id, webhook-timestamp and webhook-signature are required")
    if not stamp.isdigit():
        raise BadSignature("webhook-timestamp must be unix seconds")
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        raise BadSignature("webhook-timestamp is more than 5 minutes off")
    offered = [p for p in header.split(" ") if p.startswith("v1,") and len(p) > 3]
    for secret in secrets:
        try:
            expected = standard_sign(secret, msg_id, stamp, body)
        except ValueError:
            continue
        if any(_equal(expected, candidate) for candidate in offered):
            return msg_id
    raise BadSignature("no webhook-signature entry matches")


def token_matches(secrets: Iterable[str], offered: str) -> bool:
    """A shared token (Moodle, Bearer, Basic password) equal to one of the secrets."""
    found = False
    for secret in secrets:
        found |= _equal(secret, offered)  # no early exit: time does not depend on position
    return found
