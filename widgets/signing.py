"""Signed embed tokens: who is looking at which widget, until when.

A widget page outside an LMS (or inside one, after the LTI launch) is reached by a URL carrying a
token: the tenant, the player, the role, the locale and an expiry, signed with HMAC-SHA256 under
the application secret. Nothing else authenticates a widget request, so the token is the whole of
the viewer's authority: it never carries more than one player, and it expires.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "questline.widgets.embed"
MAX_TTL_SECONDS = 7 * 86400
ROLES = ("learner", "instructor")
LOCALES = ("en", "es")


class InvalidToken(ValueError):
    """The embed token is missing, forged, malformed or expired; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EmbedGrant:
    """What a verified token allows: one player of one tenant, as learner or instructor.

    ``course`` narrows an instructor's roster (and the default board) to one course.
    """

    tenant_id: int
    player_id: int | None
    role: str = "learner"
    locale: str = "en"
    course: str | None = None
    expires_at: int = 0

    @property
    def instructor(self) -> bool:
        return self.role == "instructor"


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def sign(secret: str, grant: EmbedGrant, *, ttl_seconds: int, now: float | None = None) -> str:
    """A token for ``grant`` valid ``ttl_seconds`` from ``now``."""
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
    if grant.role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if grant.locale not in LOCALES:
        raise ValueError(f"locale must be one of {', '.join(LOCALES)}")
    if grant.role == "learner" and grant.player_id is None:
        raise ValueError("a learner token needs a player")
    issued = int(now if now is not None else time.time())
    payload: dict[str, Any] = {
        "t": grant.tenant_id,
        "p": grant.player_id,
        "r": grant.role,
        "l": grant.locale,
        "e": issued + ttl_seconds,
    }
    if grant.course:
        payload["c"] = grant.course
    return str(_serializer(secret).dumps(payload))


def verify(secret: str, token: str | None, *, now: float | None = None) -> EmbedGrant:
    """The grant inside ``token``, or InvalidToken with the reason."""
    if not token:
        raise InvalidToken("this widget URL has no token; ask the course for a new link")
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        raise InvalidToken("the widget token is not valid (wrong signature or damaged)") from None
    if not isinstance(data, dict):
        raise InvalidToken("the widget token is malformed")
    try:
        grant = EmbedGrant(
            tenant_id=int(data["t"]),
            player_id=None if data.get("p") is None else int(data["p"]),
            role=str(data.get("r", "learner")),
            locale=str(data.get("l", "en")),
            course=data.get("c"),
            expires_at=int(data["e"]),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("the widget token is malformed") from None
    if grant.role not in ROLES or grant.locale not in LOCALES:
        raise InvalidToken("the widget token is malformed")
    if grant.expires_at <= int(now if now is not None else time.time()):
        raise InvalidToken("the widget token has expired; reload the page from the course")
    return grant
