"""Typed errors raised at the edges, mapped to a status and a JSON message in one handler.

A user never sees a stack trace: anything unexpected becomes a 500 with a short message, logged
with the tenant and request details for an operator (ARCHITECTURE invariant 10).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("questline.errors")


class QuestlineError(Exception):
    """Base of every error that maps to an HTTP answer."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        return out


class BadRequest(QuestlineError):
    status, code = 400, "bad_request"


class Unauthorized(QuestlineError):
    status, code = 401, "unauthorized"


class Forbidden(QuestlineError):
    """Authenticated, but not allowed to read or change that."""

    status, code = 403, "forbidden"


class NotFound(QuestlineError):
    status, code = 404, "not_found"


class PayloadTooLarge(QuestlineError):
    status, code = 413, "payload_too_large"


class Unprocessable(QuestlineError):
    status, code = 422, "invalid"


class ServiceUnavailable(QuestlineError):
    status, code = 503, "unavailable"


def register_error_handlers(app: Flask) -> None:
    """The one place errors become responses."""

    @app.errorhandler(QuestlineError)
    def _typed(exc: QuestlineError) -> Any:
        response = jsonify(exc.body())
        response.status_code = exc.status
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="questline"'
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if exc.code == 413:
            code, message = (
                "payload_too_large",
                (
                    f"request body is larger than the limit of "
                    f"{app.config.get('MAX_CONTENT_LENGTH')} bytes"
                ),
            )
        response = jsonify({"error": code, "message": message})
        response.status_code = exc.code or 500
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception(
            "unhandled error",
            extra={"tenant_id": getattr(g, "tenant_id", None), "path": request.path},
        )
        response = jsonify({"error": "internal", "message": "internal error; it has been logged"})
        response.status_code = 500
        return response
