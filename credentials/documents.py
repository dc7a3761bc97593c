"""The documents themselves, as plain dicts built from plain data (no database, no Flask).

Open Badges 3.0: an ``OpenBadgeCredential`` (a W3C VC 2.0), the issuer ``Profile`` (the tenant,
with its public keys) and the ``BitstringStatusListCredential`` that publishes revocations.
Open Badges 2.0: hosted ``Assertion``, ``BadgeClass`` and ``Issuer`` for 2.0-only backpacks.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credentials.proofs import CREDENTIALS_V2, OB_V3_CONTEXT

OB_V2_CONTEXT = "https://w3id.org/openbadges/v2"
# BitstringStatusList: at least 16 KiB (131,072 entries) so one list says little about a person.
STATUS_LIST_SIZE = 131_072


def iso(moment: datetime) -> str:
    """XSD dateTime in UTC with a Z, seconds precision (what the vocab types as xsd:dateTime)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def hash_identity(identity: str, salt: str) -> str:
    """``sha256$`` + hex of sha256(identity + salt): the OB 2.0 and 3.0 hashed identity."""
    return "sha256$" + hashlib.sha256((identity + salt).encode()).hexdigest()


@dataclass(frozen=True)
class Recipient:
    """Who the badge is for, never in clear: an email or, without one, a Questline player id."""

    identity: str
    identity_type: str  # "emailAddress" or "identifier" (OB 3.0 IdentifierTypeEnum)
    salt: str


@dataclass(frozen=True)
class BadgeFacts:
    """What the credential says, gathered from the award row and the tenant."""

    credential_url: str
    issuer_url: str
    issuer_name: str
    issuer_homepage: str
    achievement_url: str
    badge_name: str
    description: str
    criteria: str
    image_url: str
    explanation: str
    awarded_at: datetime
    expires_at: datetime | None
    recipient: Recipient
    status_list_url: str
    status_index: int


def open_badge_credential(facts: BadgeFacts) -> dict[str, Any]:
    """An unsigned OB 3.0 ``OpenBadgeCredential``: achievement, issuer, hashed recipient, dates,
    evidence (the award's explanation) and a BitstringStatusList entry for revocation."""
    recipient = facts.recipient
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2, OB_V3_CONTEXT],
        "id": facts.credential_url,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": facts.badge_name,
        "issuer": {
            "id": facts.issuer_url,
            "type": ["Profile"],
            "name": facts.issuer_name,
            "url": facts.issuer_homepage,
        },
        "validFrom": iso(facts.awarded_at),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityHash": hash_identity(recipient.identity, recipient.salt),
                    "identityType": recipient.identity_type,
                    "hashed": True,
                    "salt": recipient.salt,
                }
            ],
            "achievement": {
                "id": facts.achievement_url,
                "type": ["Achievement"],
                "name": facts.badge_name,
                "description": facts.description,
                "criteria": {"narrative": facts.criteria},
                "image": {"id": facts.image_url, "type": "Image"},
            },
        },
        "evidence": [
            {
                "type": ["Evidence"],
                "name": "Why this badge was awarded",
                "narrative": facts.explanation,
            }
        ],
        "credentialStatus": {
            "id": f"{facts.status_list_url}#{facts.status_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(facts.status_index),
            "statusListCredential": facts.status_list_url,
        },
    }
    if facts.expires_at is not None:
        credential["validUntil"] = iso(facts.expires_at)
    return credential


def issuer_profile(
    issuer_url: str, name: str, homepage: str, methods: list[dict[str, str]]
) -> dict[str, Any]:
    """The tenant as an OB 3.0 issuer ``Profile``, with its keys as Multikey verification
    methods (each ``id`` is ``<issuer>#<publicKeyMultibase>``, what proofs name)."""
    return {
        "@context": [CREDENTIALS_V2, OB_V3_CONTEXT],
        "id": issuer_url,
        "type": ["Profile"],
        "name": name,
        "url": homepage,
        "verificationMethod": methods,
        "assertionMethod": [method["id"] for method in methods],
    }


def encode_bitstring(revoked: Iterable[int], size: int = STATUS_LIST_SIZE) -> str:
    """The ``encodedList``: GZIP of the bitstring (index 0 is the left-most bit), base64url,
    multibase prefix ``u``."""
    bits = bytearray(size // 8)
    for index in revoked:
        if 0 <= index < size:
            bits[index // 8] |= 0x80 >> (index % 8)
    # mtime=0 so the same revocations always publish the same bytes.
    packed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()


def bit_is_set(encoded: str, index: int) -> bool:
    """Read one bit of an ``encodedList``; ValueError when it is not one."""
    if not encoded.startswith("u"):
        raise ValueError("encodedList must be multibase base64url ('u...')")
    body = encoded[1:]
    try:
        raw = gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (OSError, ValueError) as exc:
        raise ValueError(f"encodedList is not GZIP+base64url: {exc}") from exc
    if not 0 <= index < len(raw) * 8:
        raise ValueError(f"status index {index} is outside the list")
    return bool(raw[index // 8] & (0x80 >> (index % 8)))


def status_list_credential(
    list_url: str, issuer_url: str, revoked: Iterable[int], valid_from: datetime
) -> dict[str, Any]:
    """An unsigned ``BitstringStatusListCredential`` (purpose: revocation)."""
    return {
        "@context": [CREDENTIALS_V2],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_url,
        "validFrom": iso(valid_from),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_bitstring(revoked),
        },
    }


# Open Badges 2.0 (hosted verification)


def ob2_issuer(url: str, name: str, homepage: str, revocation_list: str) -> dict[str, Any]:
    return {
        "@context": OB_V2_CONTEXT,
        "type": "Issuer",
        "id": url,
        "name": name,
        "url": homepage,
        "revocationList": revocation_list,
    }


def ob2_badge_class(
    url: str, name: str, description: str, image: str, criteria: str, issuer: str
) -> dict[str, Any]:
    return {
        "@context": OB_V2_CONTEXT,
        "type": "BadgeClass",
        "id": url,
        "name": name,
        "description": description,
        "image": image,
        "criteria": {"narrative": criteria},
        "issuer": issuer,
    }


def ob2_assertion(
    url: str,
    badge_url: str,
    recipient: Recipient,
    issued_on: datetime,
    expires: datetime | None,
    explanation: str,
    image: str,
    revoked_reason: str | None = None,
) -> dict[str, Any]:
    """A hosted 2.0 Assertion. A revoked one is still served, with ``revoked`` and the reason,
    as the 2.0 spec asks (verifiers read it from the hosted URL)."""
    assertion: dict[str, Any] = {
        "@context": OB_V2_CONTEXT,
        "type": "Assertion",
        "id": url,
        "recipient": {
            "type": "email" if recipient.identity_type == "emailAddress" else "url",
            "hashed": True,
            "salt": recipient.salt,
            "identity": hash_identity(recipient.identity, recipient.salt),
        },
        "badge": badge_url,
        "issuedOn": iso(issued_on),
        "image": image,
        "evidence": {"narrative": explanation},
        "verification": {"type": "hosted"},
    }
    if expires is not None:
        assertion["expires"] = iso(expires)
    if revoked_reason is not None:
        assertion["revoked"] = True
        assertion["revocationReason"] = revoked_reason
    return assertion


def ob2_revocation_list(url: str, issuer: str, revoked: dict[str, str]) -> dict[str, Any]:
    return {
        "@context": OB_V2_CONTEXT,
        "type": "RevocationList",
        "id": url,
        "issuer": issuer,
        "revokedAssertions": [
            {"id": assertion, "revocationReason": reason} for assertion, reason in revoked.items()
        ],
    }
