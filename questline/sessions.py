"""The cookie session, skipped where no browser ever comes.

Ingest and webhook deliveries are machine-to-machine: they carry no cookie and must not set
one, and opening Flask's signed-cookie session costs every such request a serializer and a
cookie parse for nothing (measured: about a tenth of a millisecond of the ingest route).
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

MACHINE_PATHS = ("/api/v1/events",)
MACHINE_PREFIXES = ("/webhooks/",)


class QuestlineSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except a null session on machine-only endpoints."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path in MACHINE_PATHS or request.path.startswith(MACHINE_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)
