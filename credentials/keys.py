"""Tenant signing keys: Ed25519, the private half encrypted at rest with the app secret.

The private key never leaves the process unencrypted; it is sealed with Fernet under a key derived
(HKDF-SHA256) from ``QUESTLINE_SECRET_KEY``, so a database dump alone cannot sign credentials.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from credentials.multibase import ed25519_multikey

_RAW = serialization.Encoding.Raw


class KeyUnavailable(Exception):
    """The stored private key cannot be decrypted (the app secret changed)."""


@dataclass(frozen=True)
class SigningKey:
    """A decrypted key pair plus the verification method URL that names it."""

    private: Ed25519PrivateKey
    verification_method: str

    @property
    def public_bytes(self) -> bytes:
        return public_raw(self.private.public_key())


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(_RAW, serialization.PublicFormat.Raw)


def private_raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def _fernet(secret: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"questline/credentials/issuer-key"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def new_key_pair(secret: str) -> tuple[bytes, str]:
    """A fresh key pair as (raw public key, encrypted private key token)."""
    private = Ed25519PrivateKey.generate()
    return public_raw(private.public_key()), seal(private, secret)


def seal(private: Ed25519PrivateKey, secret: str) -> str:
    return _fernet(secret).encrypt(private_raw(private)).decode()


def unseal(token: str, secret: str) -> Ed25519PrivateKey:
    """Decrypt a sealed private key; KeyUnavailable if the secret is not the one it was sealed
    with."""
    try:
        raw = _fernet(secret).decrypt(token.encode())
    except InvalidToken as exc:
        raise KeyUnavailable(
            "the issuer key cannot be decrypted with the current QUESTLINE_SECRET_KEY"
        ) from exc
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_jwk(public_key: bytes, kid: str | None = None) -> dict[str, str]:
    """The RFC 8037 OKP JWK of a raw Ed25519 public key."""
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(public_key).rstrip(b"=").decode(),
    }
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def multikey_method(controller: str, public_key: bytes) -> dict[str, str]:
    """A ``Multikey`` verification method document, as published in the issuer profile."""
    multikey = ed25519_multikey(public_key)
    return {
        "id": f"{controller}#{multikey}",
        "type": "Multikey",
        "controller": controller,
        "publicKeyMultibase": multikey,
    }
