"""Typed errors of the webhook receivers; the app's one handler maps them to 4xx JSON."""

from __future__ import annotations

from questline.errors import BadRequest, NotFound, QuestlineError, Unauthorized


class InvalidPayload(BadRequest):
    """The body cannot be read as the source's format (malformed JSON/XML, wrong shape)."""

    code = "invalid_payload"


class BadSignature(Unauthorized):
    """Missing, wrong or stale authentication: signature, token, timestamp or organisation."""

    code = "bad_signature"


class UnsupportedMediaType(QuestlineError):
    status, code = 415, "unsupported_media_type"


class UnknownConnection(NotFound):
    code = "unknown_connection"
