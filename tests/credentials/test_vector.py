"""The official Open Badges 3.0 Linked Data Proof test vector (1EdTech), checked step by step:
canonical N-Quads, hashes, signature, proofValue, and then the whole credential through our
verifier; re-signing with the vector's private key reproduces its proofValue byte for byte
(Ed25519 is deterministic), which pins our signing side to the spec too."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from credentials.multibase import b58decode, b58encode, ed25519_from_multikey, ed25519_multikey
from credentials.proofs import _hash_data, add_data_integrity_proof, canonicalize
from credentials.verify import verify
from tests.credentials.conftest import FIXTURES, fixture_json

VECTOR = "v3/test-vectors/"
KEYS = fixture_json(VECTOR + "ldp_test_vector.keys_and_hashes.json")
SIGNED = fixture_json(VECTOR + "ldp_test_vector.credential_signed.json")
UNSIGNED = fixture_json(VECTOR + "ldp_test_vector.credential_unsigned.json")


def _resolve(method: str) -> bytes | None:
    return bytes.fromhex(KEYS["public_key_hex"]) if method == KEYS["verificationMethod"] else None


def _no_status(_url: str, _index: int) -> bool | None:
    raise AssertionError("the vector has no credentialStatus")


def test_canonical_forms_match_the_published_nquads() -> None:
    proof = {k: v for k, v in SIGNED["proof"].items() if k != "proofValue"}
    proof["@context"] = SIGNED["@context"]
    assert canonicalize(UNSIGNED) == (FIXTURES / VECTOR / "obv3p0-document-canon.txt").read_text()
    assert canonicalize(proof) == (FIXTURES / VECTOR / "obv3p0-proof-canon.txt").read_text()


def test_hashes_and_data_to_sign() -> None:
    data = _hash_data(UNSIGNED, SIGNED["proof"])
    assert data.hex() == KEYS["data_to_sign_hex"]
    assert (
        hashlib.sha256(canonicalize(UNSIGNED).encode()).hexdigest()
        == (KEYS["document_hash_sha256_hex"])
    )


def test_multikey_and_proof_value_encodings() -> None:
    public = bytes.fromhex(KEYS["public_key_hex"])
    assert ed25519_multikey(public) == KEYS["publicKeyMultibase"]
    assert ed25519_from_multikey(KEYS["publicKeyMultibase"]) == public
    signature = bytes.fromhex(KEYS["signature_hex"])
    assert "z" + b58encode(signature) == KEYS["proofValue"]
    assert b58decode(KEYS["proofValue"][1:]) == signature


def test_resigning_reproduces_the_published_proof() -> None:
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["private_key_hex"])[:32])
    created = datetime(2010, 1, 1, 19, 23, 24, tzinfo=UTC)
    signed = add_data_integrity_proof(UNSIGNED, private, KEYS["verificationMethod"], created)
    assert signed["proof"] == SIGNED["proof"]


def test_vector_verifies_with_our_verifier() -> None:
    result = verify(SIGNED, resolve_key=_resolve, status_lookup=_no_status)
    assert result.status == "valid", result.message
    assert result.details["achievement"] == "Teamwork"


def test_vector_with_a_changed_statement_is_tampered() -> None:
    changed = {**SIGNED, "name": "Leadership Badge"}
    result = verify(changed, resolve_key=_resolve, status_lookup=_no_status)
    assert result.status == "tampered"


def test_vector_with_another_key_is_an_unknown_issuer() -> None:
    result = verify(SIGNED, resolve_key=lambda _m: None, status_lookup=_no_status)
    assert result.status == "unknown_issuer"
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    result = verify(SIGNED, resolve_key=lambda _m: other, status_lookup=_no_status)
    assert result.status == "tampered"
