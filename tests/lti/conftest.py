"""Fixtures for whole LTI flows: Questline served on loopback (committing to the real
PostgreSQL, since the platform calls back into it from other threads) and an independent
platform (``lti1p3platform``) on another port, registered with each other."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import delete

from lti.keys import generate_key
from lti.models import LtiToolKey
from lti.registrations import register_platform
from questline import create_app
from questline.db import Database
from questline.models import Tenant
from questline.settings import Settings
from tests.conftest import make_context, new_tenant
from tests.lti.platform import INSTRUCTOR, LEARNER, Platform, serve
from workers.context import Context


@dataclass
class LtiWorld:
    app: Flask
    ctx: Context
    db: Database
    tool_url: str
    platform: Platform
    tenant_id: int
    registration_id: int

    def browser(self) -> requests.Session:
        return requests.Session()


@pytest.fixture
def lti_world(
    settings: Settings, committed_db: Database, redis_client: redis.Redis
) -> Iterator[LtiWorld]:
    ctx = make_context(settings, committed_db, redis_client)
    app = create_app(settings, context=ctx)
    tenant = new_tenant(committed_db)
    with committed_db.session() as session:
        key_id = generate_key(session, settings.secret_key, datetime.now(UTC)).id
    with serve(app) as tool_url:
        platform = Platform(tool_url=tool_url)
        with serve(platform.wsgi) as platform_url:
            platform.base = platform_url
            with committed_db.session() as session:
                registration = register_platform(
                    session,
                    tenant_id=tenant.id,
                    issuer=platform.issuer,
                    client_id=platform.client_id,
                    deployment_ids=[platform.deployment_id],
                    auth_login_url=platform_url + "/auth",
                    auth_token_url=platform_url + "/token",
                    key_set_url=platform_url + "/jwks",
                )
                registration_id = registration.id
            platform.add_user("learner-1", "Lea Learner", [LEARNER])
            platform.add_user("teacher-1", "Ted Teacher", [INSTRUCTOR])
            try:
                yield LtiWorld(
                    app, ctx, committed_db, tool_url, platform, tenant.id, registration_id
                )
            finally:
                with committed_db.session() as session:
                    session.execute(delete(Tenant).where(Tenant.id == tenant.id))
                    session.execute(delete(LtiToolKey).where(LtiToolKey.id >= key_id))
