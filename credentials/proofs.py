"""The two proof formats of an OpenBadgeCredential: Data Integrity ``eddsa-rdfc-2022`` and VC-JWT.

Data Integrity (W3C vc-di-eddsa, RDFC-1.0 canonicalization via pyld): the signature covers
``sha256(canon(proof options)) || sha256(canon(document without proof))``, so any change to the
statements a document makes (not to its whitespace or key order) breaks it. JSON-LD contexts are
served only from a frozen allowlist on disk: verification never fetches a URL, so a hostile
document cannot make the server call out or hang on a slow context host.

VC-JWT follows Open Badges 3.0 section 8.2: the JWT payload is the credential itself plus the
registered claims ``iss``, ``jti``, ``sub``, ``nbf`` and ``exp``; header ``alg=EdDSA`` with ``kid``
set to the verification method.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyld import jsonld
from pyld.documentloader.frozen import BUNDLED_CONTEXTS, FrozenDocumentLoader

from credentials.multibase import decode_multibase, encode_multibase

CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CONTEXT_DIR = Path(__file__).parent / "contexts"
CONTEXTS: dict[str, Any] = {
    **BUNDLED_CONTEXTS,
    OB_V3_CONTEXT: CONTEXT_DIR / "ob-v3p0-context-3.0.3.json",
}
CRYPTOSUITE = "eddsa-rdfc-2022"


class ProofError(Exception):
    """A proof that does not verify, or a document that cannot be canonicalized. ``kind`` is
    ``tampered`` (the signature does not match) or ``malformed`` (it cannot be checked)."""

    def __init__(self, message: str, kind: str = "malformed") -> None:
        super().__init__(message)
        self.kind = kind


_LOADER = FrozenDocumentLoader(CONTEXTS)


def canonicalize(document: Mapping[str, Any]) -> str:
    """RDFC-1.0 (URDNA2015) canonical N-Quads of a JSON-LD document, contexts from disk only."""
    try:
        result = jsonld.normalize(
            copy.deepcopy(dict(document)),
            {
                "algorithm": "URDNA2015",
                "format": "application/n-quads",
                "documentLoader": _LOADER,
            },
        )
    except jsonld.JsonLdError as exc:
        raise ProofError(f"not valid JSON-LD for a credential: {_jsonld_reason(exc)}") from exc
    except (TypeError, ValueError, KeyError, RecursionError) as exc:
        raise ProofError(f"not valid JSON-LD for a credential: {exc}") from exc
    if not isinstance(result, str):
        raise ProofError("canonicalization produced no N-Quads")
    return result


def _jsonld_reason(exc: jsonld.JsonLdError) -> str:
    details = getattr(exc, "details", None) or {}
    url = details.get("url") if isinstance(details, dict) else None
    if url:
        return f"context {url!r} is not one this verifier knows"
    return str(exc).splitlines()[0]


def _hash_data(unsecured: Mapping[str, Any], proof_options: Mapping[str, Any]) -> bytes:
    options = {k: v for k, v in proof_options.items() if k != "proofValue"}
    options["@context"] = unsecured.get("@context")
    proof_hash = hashlib.sha256(canonicalize(options).encode()).digest()
    doc_hash = hashlib.sha256(canonicalize(unsecured).encode()).digest()
    return proof_hash + doc_hash


def add_data_integrity_proof(
    document: Mapping[str, Any],
    private_key: Ed25519PrivateKey,
    verification_method: str,
    created: datetime,
) -> dict[str, Any]:
    """A copy of ``document`` with an ``eddsa-rdfc-2022`` DataIntegrityProof attached."""
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    proof: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verificationMethod": verification_method,
        "cryptosuite": CRYPTOSUITE,
        "proofPurpose": "assertionMethod",
    }
    signature = private_key.sign(_hash_data(unsecured, proof))
    proof["proofValue"] = encode_multibase(signature)
    return {**unsecured, "proof": proof}


KeyResolver = Callable[[str], bytes | None]


def verify_data_integrity(document: Mapping[str, Any], resolve_key: KeyResolver) -> str:
    """Check the document's DataIntegrityProof; return its verification method.

    ``resolve_key`` maps a verification method URL to a raw Ed25519 public key, or None when the
    issuer is unknown (then ProofError kind ``unknown_issuer``)."""
    proof = document.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    if not isinstance(proof, dict):
        raise ProofError("the credential has no proof (one DataIntegrityProof object expected)")
    for field, expected in (
        ("type", "DataIntegrityProof"),
        ("cryptosuite", CRYPTOSUITE),
        ("proofPurpose", "assertionMethod"),
    ):
        if proof.get(field) != expected:
            raise ProofError(f"proof.{field} must be {expected!r}, not {proof.get(field)!r}")
    method = proof.get("verificationMethod")
    value = proof.get("proofValue")
    if not isinstance(method, str) or not isinstance(value, str):
        raise ProofError("proof.verificationMethod and proof.proofValue must be strings")
    try:
        signature = decode_multibase(value)
    except ValueError as exc:
        raise ProofError(f"proof.proofValue: {exc}") from exc
    public = resolve_key(method)
    if public is None:
        raise ProofError(f"unknown issuer key {method!r}", kind="unknown_issuer")
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    data = _hash_data(unsecured, proof)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (InvalidSignature, ValueError) as exc:
        raise ProofError(
            "the signature does not match the credential: it was changed after signing "
            "or signed with another key",
            kind="tampered",
        ) from exc
    return method


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _epoch(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def sign_jwt(
    credential: Mapping[str, Any], private_key: Ed25519PrivateKey, verification_method: str
) -> str:
    """The compact VC-JWT (EdDSA) of an unsecured credential."""
    body = {k: v for k, v in credential.items() if k != "proof"}
    issuer = body.get("issuer")
    claims: dict[str, Any] = {
        "iss": issuer.get("id") if isinstance(issuer, dict) else issuer,
        "jti": body.get("id"),
    }
    subject = body.get("credentialSubject")
    if isinstance(subject, dict) and subject.get("id"):
        claims["sub"] = subject["id"]
    if (nbf := _epoch(body.get("validFrom"))) is not None:
        claims["nbf"] = nbf
    if (exp := _epoch(body.get("validUntil"))) is not None:
        claims["exp"] = exp
    header = {"alg": "EdDSA", "typ": "JWT", "kid": verification_method}
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps({**body, **claims}, separators=(",", ":")).encode())
    )
    signature = private_key.sign(signing_input.encode())
    return signing_input + "." + _b64url(signature)


REGISTERED_CLAIMS = ("iss", "jti", "sub", "nbf", "exp", "iat")


def verify_jwt(token: str, resolve_key: KeyResolver) -> tuple[dict[str, Any], str]:
    """Check a VC-JWT; return (the credential without the JWT claims, the kid).

    The algorithm is pinned to EdDSA whatever the header says (no ``alg: none``, no HMAC with the
    public key), and the key comes from ``resolve_key(kid)``, never from a ``jwk`` in the header.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ProofError("a VC-JWT has three dot-separated parts")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        payload = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProofError(f"the JWT is not base64url JSON: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ProofError("the JWT header and payload must be JSON objects")
    if header.get("alg") != "EdDSA":
        raise ProofError(f"JWT alg must be 'EdDSA', not {header.get('alg')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise ProofError("the JWT header has no kid naming the issuer key")
    public = resolve_key(kid)
    if public is None:
        raise ProofError(f"unknown issuer key {kid!r}", kind="unknown_issuer")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            signature, f"{parts[0]}.{parts[1]}".encode()
        )
    except (InvalidSignature, ValueError) as exc:
        raise ProofError(
            "the JWT signature does not match: it was changed after signing or signed with "
            "another key",
            kind="tampered",
        ) from exc
    credential = {k: v for k, v in payload.items() if k not in REGISTERED_CLAIMS}
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    jti = payload.get("jti", credential.get("id"))
    if payload.get("iss") != issuer_id or jti != credential.get("id"):
        raise ProofError("the JWT claims iss/jti disagree with the credential", kind="tampered")
    return credential, kid
