"""Why a login or launch was refused, as typed 4xx errors with a machine-readable reason.

pylti1p3 raises one ``LtiException`` with free text; ``lti.launch`` decides which of these it
means, and the blueprint renders each as a page that names the reason (never a 500).
"""

from __future__ import annotations

from questline.errors import QuestlineError


class LtiRejected(QuestlineError):
    """A launch or login that must not proceed. ``reason`` is a stable code for tests and logs."""

    status, code = 400, "lti_rejected"

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason
        if status is not None:
            self.status = status


def rejected(reason: str, message: str) -> LtiRejected:
    """Authentication failures are 401; malformed or mismatched requests are 400."""
    auth = {
        "bad_signature",
        "unknown_kid",
        "wrong_issuer",
        "wrong_audience",
        "wrong_azp",
        "token_expired",
        "token_not_yet_valid",
        "nonce_replayed",
        "state_mismatch",
        "unknown_deployment",
    }
    return LtiRejected(reason, message, status=401 if reason in auth else 400)
