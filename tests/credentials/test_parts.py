"""The small parts on their own: status bitstrings, baking, key sealing, multibase."""

from __future__ import annotations

import base64
import gzip

import png as pypng
import pytest

from credentials.baking import BakingError, badge_png, bake, unbake
from credentials.documents import STATUS_LIST_SIZE, bit_is_set, encode_bitstring, hash_identity
from credentials.keys import KeyUnavailable, new_key_pair, public_raw, unseal
from credentials.multibase import b58decode, b58encode, ed25519_from_multikey


def test_bitstring_positions_and_size() -> None:
    encoded = encode_bitstring([0, 7, 8, STATUS_LIST_SIZE - 1])
    body = encoded[1:]
    raw = gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert len(raw) == STATUS_LIST_SIZE // 8  # 16 KiB: the spec's minimum, for privacy
    assert raw[0] == 0b1000_0001 and raw[1] == 0b1000_0000  # index 0 is the left-most bit
    for index in (0, 7, 8, STATUS_LIST_SIZE - 1):
        assert bit_is_set(encoded, index)
    assert not bit_is_set(encoded, 1)
    assert encode_bitstring([3]) == encode_bitstring([3])  # stable bytes for caches
    with pytest.raises(ValueError, match="outside"):
        bit_is_set(encoded, STATUS_LIST_SIZE)
    with pytest.raises(ValueError):
        bit_is_set("zabc", 0)


def test_baking_round_trip_is_a_valid_png() -> None:
    image = badge_png("tenant/badge", size=32)
    baked = bake(image, '{"name": "Écrit ✓"}')
    assert unbake(baked) == ("openbadgecredential", '{"name": "Écrit ✓"}')
    width, height, rows, _info = pypng.Reader(bytes=baked).read()  # CRCs checked by pypng
    assert (width, height) == (32, 32) and len(list(rows)) == 32
    rebaked = bake(baked, "second")  # baking again replaces, never stacks
    assert [kind for kind, _ in pypng.Reader(bytes=rebaked).chunks()].count(b"iTXt") == 1
    assert unbake(rebaked)[1] == "second"


@pytest.mark.parametrize("data", [b"", b"GIF89a", badge_png("x", 8), badge_png("x", 8)[:30]])
def test_unbake_errors(data: bytes) -> None:
    with pytest.raises(BakingError):
        unbake(data)


def test_keys_are_sealed_with_the_app_secret() -> None:
    public, sealed = new_key_pair("secret-one")
    assert public.hex() not in sealed
    private = unseal(sealed, "secret-one")
    assert public_raw(private.public_key()) == public
    with pytest.raises(KeyUnavailable, match="QUESTLINE_SECRET_KEY"):
        unseal(sealed, "secret-two")


def test_multibase_edges() -> None:
    assert b58encode(b"\0\0\1") == "112"
    assert b58decode("112") == b"\0\0\1"
    with pytest.raises(ValueError):
        b58decode("0OIl")
    with pytest.raises(ValueError):
        ed25519_from_multikey("z" + b58encode(b"\xec\x01" + bytes(32)))  # an X25519 key


def test_hash_identity_matches_the_ob2_example() -> None:
    """The published OB 2.0 example hashes an address with salt 'deadsea'; the spec's text
    does not give the address, so check the shape and the salt's effect."""
    assert hash_identity("a@example.org", "s1") != hash_identity("a@example.org", "s2")
    assert hash_identity("a@example.org", "s1").startswith("sha256$")
    assert len(hash_identity("x", "y")) == len("sha256$") + 64
