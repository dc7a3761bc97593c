"""SSO client secrets at rest: Fernet under a key derived (HKDF-SHA256) from QUESTLINE_SECRET_KEY,
so a database dump alone does not hand out the tenant's IdP client credentials (the same scheme
as the LTI tool keys in ``lti/keys.py``, with its own salt)."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from identity.errors import SsoRejected


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"questline-identity", info=b"sso-client"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret_key: str, value: str) -> str:
    return _fernet(secret_key).encrypt(value.encode()).decode()


def unseal(secret_key: str, sealed: str) -> str:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        raise SsoRejected(
            "sso_secret_unreadable",
            "the stored SSO client secret cannot be decrypted (QUESTLINE_SECRET_KEY changed?); "
            "configure the client secret again",
            503,
        ) from None
