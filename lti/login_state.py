"""The OIDC login's state and nonce, signed instead of stored.

A login used to insert a row (state, nonce) that the launch then marked used: two writes and a
commit per round trip, for facts the tool can carry itself. The state is now
``<registration id>.<expiry>.<flags>.<random>.<mac>``, MACed with a key derived from
QUESTLINE_SECRET_KEY, and the nonce is derived from the state with the same key. At launch the
MAC proves we issued the state (for that registration, not expired), the nonce derivation proves
the id_token was issued for this login, and the nonce's single use (``lti_used_nonces``, unique
per registration) makes the state single-use too: one state has exactly one nonce.

``flags`` records how the login bound the state to the browser: ``c`` a cookie only, or ``p``
followed by the base64url storage target frame: the LTI client-side postMessage storage as well
(the platform offered ``lti_storage_target``), which the launch page reads back from that frame.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

LOGIN_STATE_LIFETIME = timedelta(minutes=10)
MAX_TARGET = 64


def _key(secret: str, purpose: bytes) -> bytes:
    return hashlib.sha256(b"questline-lti-login\x00" + purpose + b"\x00" + secret.encode()).digest()


def _mac(secret: str, purpose: bytes, message: str, size: int) -> str:
    digest = hmac.new(_key(secret, purpose), message.encode(), hashlib.sha256).digest()
    return _b64(digest[:size])


@dataclass(frozen=True)
class LoginState:
    """A state we issued: the registration it is for, when it expires, how it is bound."""

    state: str
    registration_id: int
    expires_at: int
    # The platform's storage frame (``lti_storage_target``), when the login used it.
    storage_target: str | None

    @property
    def post_message(self) -> bool:
        return self.storage_target is not None

    @property
    def storage_key(self) -> str:
        """The key the login page stores the state under in the platform's postMessage
        storage (``lti.put_data``) and the launch page reads back (``lti.get_data``)."""
        return "state_" + self.state


def issue(
    secret: str, registration_id: int, now: datetime, storage_target: str | None = None
) -> LoginState:
    """A fresh state for a login to ``registration_id``; ``storage_target`` when the state
    is also kept in the platform's postMessage storage."""
    if storage_target is not None and not 0 < len(storage_target) <= MAX_TARGET:
        raise ValueError(f"a storage target has 1 to {MAX_TARGET} characters")
    flags = "c" if storage_target is None else "p" + _b64(storage_target.encode())
    expires = int((now + LOGIN_STATE_LIFETIME).timestamp())
    body = f"{registration_id}.{expires}.{flags}.{secrets.token_urlsafe(18)}"
    state = body + "." + _mac(secret, b"state", body, 18)
    return LoginState(state, registration_id, expires, storage_target)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def nonce_for(secret: str, state: str) -> str:
    """The nonce issued with ``state``: only the tool can compute it."""
    return _mac(secret, b"nonce", state, 24)


def verify(secret: str, state: str, now: datetime) -> LoginState | None:
    """The state if we issued it and it has not expired, else None (the caller names why)."""
    parts = state.split(".")
    if len(parts) != 5 or len(state) > 300:
        return None
    body = ".".join(parts[:4])
    if not hmac.compare_digest(_mac(secret, b"state", body, 18), parts[4]):
        return None
    registration, expires, flags = parts[0], parts[1], parts[2]
    if not (registration.isdigit() and expires.isdigit() and flags[:1] in {"c", "p"}):
        return None
    if int(expires) <= now.timestamp():
        return None
    target = None
    if flags[0] == "p":  # MACed by us, so well-formed; decoded defensively all the same
        try:
            target = base64.urlsafe_b64decode(flags[1:] + "=" * (-len(flags[1:]) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
    return LoginState(state, int(registration), int(expires), target)
