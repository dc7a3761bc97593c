"""Multibase base58btc and the Ed25519 ``Multikey`` encoding (``z6Mk...``).

Small enough to own: base58 is twenty lines, and the official OB 3.0 test vector pins both the
public key (``publicKeyMultibase``) and the ``proofValue`` encodings, so a mistake here fails it.
"""

from __future__ import annotations

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: i for i, char in enumerate(ALPHABET)}
# The multicodec prefix of an Ed25519 public key (0xed as an unsigned varint: 0xed 0x01).
ED25519_PUB_PREFIX = b"\xed\x01"


def b58encode(data: bytes) -> str:
    """Bitcoin base58: leading zero bytes become leading '1's."""
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = ALPHABET[rem] + out
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + out


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        if char not in _INDEX:
            raise ValueError(f"not base58: {char!r}")
        number = number * 58 + _INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + body


def encode_multibase(data: bytes) -> str:
    """``z`` + base58btc, the multibase form Data Integrity uses for proofValue."""
    return "z" + b58encode(data)


def decode_multibase(text: str) -> bytes:
    """Decode a base58btc multibase string; ValueError for any other base."""
    if not text.startswith("z"):
        raise ValueError("only base58btc multibase ('z...') is supported")
    return b58decode(text[1:])


def ed25519_multikey(public_key: bytes) -> str:
    """The ``publicKeyMultibase`` of a raw 32-byte Ed25519 public key."""
    return encode_multibase(ED25519_PUB_PREFIX + public_key)


def ed25519_from_multikey(text: str) -> bytes:
    """The raw Ed25519 public key inside a ``z6Mk...`` multikey; ValueError otherwise."""
    raw = decode_multibase(text)
    if len(raw) != 34 or raw[:2] != ED25519_PUB_PREFIX:
        raise ValueError("not an Ed25519 multikey")
    return raw[2:]
