"""One verification answer for anything a visitor can paste: a JSON credential or a VC-JWT.

Every failure is a result, never an exception: ``valid``, ``expired``, ``not_yet_valid``,
``revoked``, ``tampered``, ``unknown_issuer``, ``status_unavailable`` or ``malformed``, each with a
sentence saying why. Keys and revocation bits come from callbacks, so this module has no database
and can verify the official test vector with the key the vector publishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from credentials.documents import hash_identity
from credentials.proofs import KeyResolver, ProofError, verify_data_integrity, verify_jwt

# (statusListCredential URL, index) -> True revoked / False in force / None list unknown.
StatusLookup = Callable[[str, int], bool | None]

MAX_INPUT_BYTES = 256 * 1024


@dataclass
class VerificationResult:
    status: str
    message: str
    format: str | None = None
    credential: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["valid"] = self.valid
        out.pop("credential")
        return out


def _parse_time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{name} is not an ISO 8601 date-time: {value!r}") from exc
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone")
    return moment


def _summary(credential: dict[str, Any]) -> dict[str, Any]:
    issuer = credential.get("issuer")
    subject = credential.get("credentialSubject")
    achievement = subject.get("achievement") if isinstance(subject, dict) else None
    return {
        "id": credential.get("id"),
        "name": credential.get("name"),
        "issuer": issuer.get("name") if isinstance(issuer, dict) else issuer,
        "issuer_id": issuer.get("id") if isinstance(issuer, dict) else issuer,
        "achievement": achievement.get("name") if isinstance(achievement, dict) else None,
        "valid_from": credential.get("validFrom"),
        "valid_until": credential.get("validUntil"),
    }


def parse_input(raw: str | bytes | dict[str, Any]) -> dict[str, Any] | str:
    """A credential dict, or a JWT string; ValueError naming the problem otherwise."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, bytes):
        if len(raw) > MAX_INPUT_BYTES:
            raise ValueError(f"the credential is larger than {MAX_INPUT_BYTES} bytes")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("the credential is not UTF-8 text") from exc
    text = raw.strip()
    if not text:
        raise ValueError("nothing to verify: paste a credential (JSON) or a VC-JWT")
    if len(text) > MAX_INPUT_BYTES:
        raise ValueError(f"the credential is larger than {MAX_INPUT_BYTES} bytes")
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"the credential is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError("the credential must be a JSON object")
        return value
    if text.count(".") == 2:
        return text
    raise ValueError("expected a JSON credential ({...}) or a compact VC-JWT (xxx.yyy.zzz)")


def verify(
    raw: str | bytes | dict[str, Any],
    *,
    resolve_key: KeyResolver,
    status_lookup: StatusLookup,
    now: datetime | None = None,
) -> VerificationResult:
    """Verify an Open Badges 3.0 credential (Data Integrity JSON or VC-JWT) at ``now``."""
    now = now or datetime.now(UTC)
    try:
        parsed = parse_input(raw)
    except ValueError as exc:
        return VerificationResult("malformed", str(exc))
    fmt = "vc-jwt" if isinstance(parsed, str) else "data-integrity"
    try:
        if isinstance(parsed, str):
            credential, method = verify_jwt(parsed, resolve_key)
        else:
            if "@context" not in parsed:
                return VerificationResult("malformed", "the credential has no @context", fmt)
            credential = {k: v for k, v in parsed.items() if k != "proof"}
            method = verify_data_integrity(parsed, resolve_key)
    except ProofError as exc:
        return VerificationResult(exc.kind, str(exc), fmt)
    except RecursionError:
        return VerificationResult("malformed", "the credential is nested too deeply", fmt)
    summary = _summary(credential)
    result = VerificationResult("valid", "", fmt, credential, summary)
    types = credential.get("type")
    if not isinstance(types, list) or not (
        {"OpenBadgeCredential", "AchievementCredential"} & set(map(str, types))
    ):
        result.status, result.message = (
            "malformed",
            "type must list OpenBadgeCredential (or AchievementCredential)",
        )
        return result
    if method.split("#", 1)[0] != summary["issuer_id"]:
        result.status, result.message = (
            "tampered",
            f"the credential names issuer {summary['issuer_id']!r} but was signed by a key of "
            f"{method.split('#', 1)[0]!r}",
        )
        return result
    try:
        valid_from = _parse_time(credential.get("validFrom"), "validFrom")
        valid_until = _parse_time(credential.get("validUntil"), "validUntil")
    except ValueError as exc:
        result.status, result.message = "malformed", str(exc)
        return result
    if valid_from is not None and now < valid_from:
        result.status, result.message = "not_yet_valid", f"valid only from {valid_from}"
        return result
    if valid_until is not None and now >= valid_until:
        result.status, result.message = "expired", f"the credential expired on {valid_until}"
        return result
    status_result = _check_status(credential.get("credentialStatus"), status_lookup)
    if status_result is not None:
        result.status, result.message = status_result
        return result
    result.message = "the signature, the issuer, the dates and the revocation status all check out"
    return result


def recipient_matches(credential: dict[str, Any], identity: str) -> bool:
    """Whether ``identity`` (an email or identifier the verifier was told) is the credential's
    recipient: the same salted SHA-256 as one ``identifier`` entry, or the subject ``id``. This
    is how an employer checks a badge belongs to the applicant without the issuer revealing
    the address."""
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        return False
    wanted = identity.strip()
    if subject.get("id") == wanted:
        return True
    entries = subject.get("identifier")
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, dict):
            continue
        value, salt = entry.get("identityHash"), entry.get("salt") or ""
        if not isinstance(value, str) or not isinstance(salt, str):
            continue
        candidate = wanted.lower() if entry.get("identityType") == "emailAddress" else wanted
        if entry.get("hashed") is False and value == candidate:
            return True
        if value.lower() == hash_identity(candidate, salt):
            return True
    return False


def _check_status(entry: Any, lookup: StatusLookup) -> tuple[str, str] | None:
    if entry is None:
        return None
    entries = entry if isinstance(entry, list) else [entry]
    for item in entries:
        if not isinstance(item, dict) or item.get("type") != "BitstringStatusListEntry":
            return "malformed", "credentialStatus must be a BitstringStatusListEntry"
        if item.get("statusPurpose") not in ("revocation", "suspension"):
            continue
        url = item.get("statusListCredential")
        try:
            index = int(item.get("statusListIndex", ""))
        except (TypeError, ValueError):
            return "malformed", "credentialStatus.statusListIndex must be an integer string"
        if not isinstance(url, str):
            return "malformed", "credentialStatus.statusListCredential must be a URL"
        state = lookup(url, index)
        if state is None:
            return (
                "status_unavailable",
                f"the status list {url} could not be checked, so revocation is unknown",
            )
        if state:
            return "revoked", "the issuer has revoked this credential"
    return None
