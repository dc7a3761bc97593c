"""The tool's own RSA keys: generated here, stored encrypted, published at ``GET /lti/jwks``.

The private key is encrypted with Fernet under a key derived (HKDF-SHA256) from
QUESTLINE_SECRET_KEY, so a database dump alone cannot sign as Questline. Rotation adds a new
signing key and keeps the old one published for ``KEY_GRACE`` so the tokens it signed (deep
linking responses, service client assertions: minutes) still verify where they are checked.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwcrypto.jwk import JWK
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lti.models import LtiToolKey

# Longer than any token the tool signs lives (pylti1p3: 60 s assertions, 600 s deep links),
# plus room for platforms that cache our JWKS for a while.
KEY_GRACE = timedelta(hours=1)


class KeyUnavailable(RuntimeError):
    """The tool has no usable signing key (none generated, or the secret changed)."""


def _fernet(secret: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"questline-lti", info=b"tool-keys"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def public_jwk(private_pem: str) -> dict[str, Any]:
    """The public JWK of a PEM private key; the kid is the RFC 7638 thumbprint, which is what
    pylti1p3 puts in the headers of the tokens it signs with that key."""
    jwk = JWK.from_pem(private_pem.encode())
    out: dict[str, Any] = json.loads(jwk.export_public())
    out.update(alg="RS256", use="sig", kid=jwk.thumbprint())
    return out


def generate_key(session: Session, secret: str, now: datetime) -> LtiToolKey:
    """Create a new signing key; every older active key is retired (still published)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = public_jwk(pem)
    for old in session.scalars(select(LtiToolKey).where(LtiToolKey.retired_at.is_(None))):
        old.retired_at = now
        old.publish_until = now + KEY_GRACE
    key = LtiToolKey(
        kid=jwk["kid"],
        private_key_encrypted=_fernet(secret).encrypt(pem.encode()).decode(),
        public_jwk=jwk,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key


def published_jwks(session: Session, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Every public key a platform may need: the signing key and those still in grace."""
    rows = session.scalars(
        select(LtiToolKey)
        .where(or_(LtiToolKey.publish_until.is_(None), LtiToolKey.publish_until > now))
        .order_by(LtiToolKey.id.desc())
    )
    return {"keys": [dict(row.public_jwk) for row in rows]}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str


class SigningKeyCache:
    """Decrypting and parsing a key costs a millisecond: keep the current one per process,
    and look again only when the kid in the database changes."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._cached: SigningKey | None = None

    def current(self, session: Session) -> SigningKey:
        row = session.execute(
            select(LtiToolKey.kid, LtiToolKey.private_key_encrypted)
            .where(LtiToolKey.retired_at.is_(None))
            .order_by(LtiToolKey.id.desc())
            .limit(1)
        ).first()
        if row is None:
            raise KeyUnavailable("the tool has no signing key: run `questline lti keys rotate`")
        kid, encrypted = row
        with self._lock:
            if self._cached is not None and self._cached.kid == kid:
                return self._cached
        try:
            pem = _fernet(self._secret).decrypt(encrypted.encode()).decode()
        except InvalidToken:
            raise KeyUnavailable(
                "the tool's signing key cannot be decrypted: QUESTLINE_SECRET_KEY has changed "
                "since it was made; run `questline lti keys rotate`"
            ) from None
        key = SigningKey(kid, pem)
        with self._lock:
            self._cached = key
        return key
