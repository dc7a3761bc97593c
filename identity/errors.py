"""Typed identity errors, mapped to 4xx answers by the app's one error handler."""

from __future__ import annotations

from questline.errors import Forbidden, QuestlineError

__all__ = ["Conflict", "Forbidden", "SsoRejected"]


class SsoRejected(QuestlineError):
    """A login, token or configuration we refuse, with a machine reason and a human message."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = reason
        self.status = status


class Conflict(QuestlineError):
    """The change contradicts what is stored (an identity already held by another player)."""

    status, code = 409, "conflict"
