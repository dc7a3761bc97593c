"""Our credentials verify with verifiers we did not write, and the official vector with theirs.

- openbadgeslib (PyPI, luisgf/openbadgeslib): a full OB 3.0 verifier. ``OB3LdpVerifier`` checks
  the Data Integrity proof *and* that the JSON is exactly the compacted form of what was signed;
  ``OB3Verifier`` checks the VC-JWT (PyJWT underneath, algorithm pinned to the key).
- pyoxigraph (Oxigraph, Rust) parses the JSON-LD and canonicalizes with RDFC-1.0 on its own, and
  PyNaCl (libsodium) checks the Ed25519 signature: no line of the pipeline is ours or pyld's.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import nacl.exceptions
import nacl.signing
import pyoxigraph as ox
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from openbadgeslib.ob3.ldp import OB3LdpVerifier
from openbadgeslib.ob3.verifier import OB3VerificationError, OB3Verifier

from credentials.multibase import decode_multibase, ed25519_from_multikey
from credentials.proofs import CONTEXTS
from tests.credentials.conftest import fixture_json, issue


def _pem(public: bytes) -> bytes:
    return Ed25519PublicKey.from_public_bytes(public).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _public_of(document: dict[str, Any]) -> bytes:
    return ed25519_from_multikey(document["proof"]["verificationMethod"].split("#")[1])


def _oxigraph_canon(document: dict[str, Any]) -> str:
    """RDFC-1.0 N-Quads by Oxigraph, with the remote contexts inlined from the pinned copies."""
    inlined = dict(document)
    inlined["@context"] = [
        json.loads(CONTEXTS[url].read_text())["@context"] for url in document["@context"]
    ]
    dataset = ox.Dataset(ox.parse(json.dumps(inlined).encode(), ox.RdfFormat.JSON_LD))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    lines = ox.serialize(dataset, format=ox.RdfFormat.N_QUADS).decode().splitlines()
    return "".join(line + "\n" for line in sorted(lines))


def _independent_check(document: dict[str, Any], public: bytes) -> None:
    """vc-di-eddsa verification with Oxigraph + libsodium; raises on a bad signature."""
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    options = {k: v for k, v in document["proof"].items() if k != "proofValue"}
    options["@context"] = document["@context"]
    data = (
        hashlib.sha256(_oxigraph_canon(options).encode()).digest()
        + hashlib.sha256(_oxigraph_canon(unsecured).encode()).digest()
    )
    signature = decode_multibase(document["proof"]["proofValue"])
    nacl.signing.VerifyKey(public).verify(data, signature)


def test_official_vector_with_oxigraph_and_libsodium() -> None:
    signed = fixture_json("v3/test-vectors/ldp_test_vector.credential_signed.json")
    _independent_check(signed, _public_of(signed))


def test_official_vector_with_openbadgeslib() -> None:
    signed = fixture_json("v3/test-vectors/ldp_test_vector.credential_signed.json")
    credential = OB3LdpVerifier(pubkey_pem=_pem(_public_of(signed))).verify(signed)
    assert credential.issuer.id == "https://example.edu/issuers/565049"


def test_our_data_integrity_credential_verifies_with_openbadgeslib(client, tenant, award) -> None:
    document = issue(client, tenant, *award)["credential"]
    credential = OB3LdpVerifier(pubkey_pem=_pem(_public_of(document))).verify(document)
    assert credential.issuer.id == document["issuer"]["id"]
    assert credential.achievement.name == "First Steps"


def test_our_data_integrity_credential_verifies_with_oxigraph_and_libsodium(
    client, tenant, award
) -> None:
    document = issue(client, tenant, *award)["credential"]
    _independent_check(document, _public_of(document))
    tampered = json.loads(json.dumps(document))
    tampered["credentialSubject"]["achievement"]["name"] = "Gold Medal"
    with pytest.raises(nacl.exceptions.BadSignatureError):
        _independent_check(tampered, _public_of(document))


def test_our_vc_jwt_verifies_with_openbadgeslib(client, tenant, award) -> None:
    body = issue(client, tenant, *award)
    public = _public_of(body["credential"])
    credential = OB3Verifier(_pem(public)).verify(body["jwt"])
    assert credential.issuer.id == body["credential"]["issuer"]["id"]
    head, payload, signature = body["jwt"].split(".")
    forged = head + "." + payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    with pytest.raises(OB3VerificationError):
        OB3Verifier(_pem(public)).verify(forged + "." + signature)


def test_published_key_is_the_signing_key(client, tenant, award) -> None:
    """The issuer profile publishes the key an outside verifier needs, at the issuer URL."""
    document = issue(client, tenant, *award)["credential"]
    profile = client.get(f"/ob/v3/issuers/{tenant.id}").get_json(force=True)
    method_ids = [method["id"] for method in profile["verificationMethod"]]
    assert document["proof"]["verificationMethod"] in method_ids
    jwks = client.get(f"/ob/v3/issuers/{tenant.id}/jwks.json").get_json()
    assert [key["kid"] for key in jwks["keys"]] == method_ids


def test_revocation_seen_by_openbadgeslib(client, tenant, award) -> None:
    """openbadgeslib fetches our BitstringStatusListCredential (through the test client instead
    of HTTPS; it wants the list as a VC-JWT, which we serve by content negotiation), checks the
    list's own signature and issuer, and reads the bit: in force, then revoked."""
    body = issue(client, tenant, *award)
    document = body["credential"]
    fetched: list[str] = []

    def download(url: str) -> bytes:
        fetched.append(url)
        response = client.get(
            url.removeprefix("http://localhost"), headers={"Accept": "application/vc+jwt"}
        )
        assert response.status_code == 200
        return bytes(response.data)

    verifier = OB3LdpVerifier(pubkey_pem=_pem(_public_of(document)))
    verifier.verify(document, check_status=True, download=download)
    assert fetched == [document["credentialStatus"]["statusListCredential"]]
    client.post(
        f"/api/v1/players/{award[0]}/badges/{award[1]}/revoke",
        headers=tenant.auth,
        json={"reason": "issued in error"},
    )
    with pytest.raises(OB3VerificationError, match="revocation"):
        verifier.verify(document, check_status=True, download=download)
    with pytest.raises(OB3VerificationError, match="revocation"):
        OB3Verifier(_pem(_public_of(document))).verify(
            body["jwt"], check_status=True, download=download
        )
