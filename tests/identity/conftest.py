"""Fixtures for whole SSO flows against a real OpenID provider (panva's ``oidc-provider``).

The provider runs under Node from ``tests/identity/idp`` (installed with ``npm ci`` from the
committed lock file the first time; a missing Node or a failed install fails the run loudly).
Questline is served on loopback, committing to the real PostgreSQL, because the provider
redirects a ``requests`` browser back into it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import delete
from werkzeug.serving import make_server

from identity.config import configure_sso
from questline import create_app
from questline.db import Database
from questline.models import Tenant
from questline.settings import Settings
from tests.conftest import TenantHandle, make_context, new_tenant
from workers.context import Context

IDP_DIR = Path(__file__).parent / "idp"
API_AUDIENCE_BASE = "https://api.questline.test/"


def _ensure_installed() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.exit("the identity tests need Node.js and npm (apt-get install nodejs npm)", 3)
    if (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=IDP_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.exit(f"npm ci in {IDP_DIR} failed:\n{done.stdout}\n{done.stderr}", 3)


@dataclass
class Idp:
    """The running provider and its test-only control routes."""

    issuer: str
    process: subprocess.Popen[str]

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(self.issuer + path, data=json.dumps(body or {}), timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def add_client(self, **metadata: Any) -> None:
        self._post("/__test/clients", metadata)

    def rotate_keys(self) -> list[str]:
        return list(self._post("/__test/rotate")["kids"])

    def jwks(self) -> dict[str, Any]:
        return dict(requests.get(self.issuer + "/jwks", timeout=10).json())


@pytest.fixture(scope="session")
def idp() -> Iterator[Idp]:
    _ensure_installed()
    process = subprocess.Popen(
        ["node", "host.mjs"],
        cwd=IDP_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout=30)
    line = ready[0] if ready else ""
    if not line.startswith("READY "):
        process.kill()
        pytest.exit(f"the test OpenID provider did not start (got {line!r})", 3)
    try:
        yield Idp(issuer=line.split()[1], process=process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@dataclass
class SsoWorld:
    app: Flask
    ctx: Context
    db: Database
    base: str
    idp: Idp
    tenant: TenantHandle
    client_id: str
    client_secret: str
    api_audience: str

    def login_url(self, tenant_id: int | None = None) -> str:
        return f"{self.base}/sso/{tenant_id or self.tenant.id}/login"


def make_world(
    idp: Idp, app: Flask, ctx: Context, db: Database, base: str, **settings: Any
) -> SsoWorld:
    tenant = new_tenant(db)
    client_id, secret = f"ql-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    audience = API_AUDIENCE_BASE + client_id
    idp.add_client(
        client_id=client_id,
        client_secret=secret,
        redirect_uris=[f"{base}/sso/{tenant.id}/callback"],
        post_logout_redirect_uris=[f"{base}/sso/logged-out"],
        grant_types=["authorization_code"],
        response_types=["code"],
        token_endpoint_auth_method="client_secret_basic",
    )
    values = {
        "issuer": idp.issuer,
        "client_id": client_id,
        "client_secret": secret,
        "scopes": "openid email profile employee groups",
        "api_audience": audience,
        **settings,
    }
    with db.session() as session:
        configure_sso(session, tenant.id, values, actor="test", secret_key=ctx.settings.secret_key)
    return SsoWorld(app, ctx, db, base, idp, tenant, client_id, secret, audience)


@pytest.fixture
def sso_app(
    settings: Settings, committed_db: Database, redis_client: redis.Redis
) -> Iterator[tuple[Flask, Context, str]]:
    ctx = make_context(settings, committed_db, redis_client)
    app = create_app(settings, context=ctx)
    created_before = _max_tenant(committed_db)
    with serve(app) as base:
        try:
            yield app, ctx, base
        finally:
            with committed_db.session() as session:
                session.execute(delete(Tenant).where(Tenant.id > created_before))


def _max_tenant(db: Database) -> int:
    from sqlalchemy import func, select

    with db.sessions() as session:
        return int(session.scalar(select(func.coalesce(func.max(Tenant.id), 0))) or 0)


@pytest.fixture
def world(idp: Idp, sso_app: tuple[Flask, Context, str], committed_db: Database) -> SsoWorld:
    app, ctx, base = sso_app
    return make_world(idp, app, ctx, committed_db, base, link_claim="employee_id")


FORM = re.compile(r"<form[^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", re.S)
HIDDEN = re.compile(r"<input[^>]*name=\"([^\"]+)\"[^>]*value=\"([^\"]*)\"", re.S)


def parse_form(html: str) -> tuple[str, dict[str, str]]:
    """The first form's action and its pre-filled fields (what a browser would submit)."""
    match = FORM.search(html)
    assert match, f"no form in page: {html[:300]}"
    return unescape(match.group(1)), {k: unescape(v) for k, v in HIDDEN.findall(match.group(2))}


def sign_in(
    world: SsoWorld, browser: requests.Session, user: str, password: str
) -> requests.Response:
    """Drive the whole login: Questline -> provider login page -> credentials -> back."""
    page = browser.get(world.login_url(), timeout=20)
    assert page.status_code == 200 and "Sign in" in page.text, page.text[:300]
    action, fields = parse_form(page.text)
    fields.update(login=user, password=password)
    return browser.post(requests.compat.urljoin(page.url, action), data=fields, timeout=20)
