"""LTI Dynamic Registration 1.0: the platform opens /lti/register with its configuration URL
and a registration token; Questline registers itself, stores the answer for the invited
tenant, and a launch with the new client id then works end to end. Refusals are 4xx (our
side) or 502 (the platform's side), each naming the reason, and leave nothing behind."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from lti.dynamic_registration import (
    INVITATION_MAX_AGE,
    PlatformConfiguration,
    invitation,
    tool_registration,
)
from lti.errors import LtiRejected
from lti.models import LtiDeployment, LtiRegistration
from tests.lti.conftest import LtiWorld
from tests.lti.test_rejections import reason_of


def _register(world: LtiWorld, **params: str) -> tuple[int, str]:
    platform = world.platform
    query = {
        "tenant": invitation(world.ctx.settings.secret_key, world.tenant_id),
        "openid_configuration": platform.base + "/.well-known/openid-configuration",
        "registration_token": platform.registration_token,
        **params,
    }
    response = world.browser().get(world.tool_url + "/lti/register", params=query, timeout=10)
    return response.status_code, response.text


def _registrations(world: LtiWorld) -> list[LtiRegistration]:
    with world.db.sessions() as session:
        return list(
            session.scalars(
                select(LtiRegistration).where(LtiRegistration.tenant_id == world.tenant_id)
            )
        )


def test_dynamic_registration_then_launch(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    status, page = _register(lti_world)
    assert status == 200, page
    assert "org.imsglobal.lti.close" in page
    assert platform.client_id.startswith("dyn-") and platform.client_id in page

    [sent] = platform.registrations
    tool = lti_world.tool_url
    assert sent["initiate_login_uri"] == tool + "/lti/login"
    assert sent["redirect_uris"] == [tool + "/lti/launch"]
    assert sent["jwks_uri"] == tool + "/lti/jwks"
    # Only scopes the platform supports are asked for (it does not offer result.readonly).
    assert "result.readonly" not in sent["scope"] and "/scope/score" in sent["scope"]
    messages = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
    assert {m["type"] for m in messages} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}

    with lti_world.db.sessions() as session:
        row = session.scalar(
            select(LtiRegistration).where(LtiRegistration.client_id == platform.client_id)
        )
        assert row is not None
        assert (row.tenant_id, row.method, row.issuer) == (
            lti_world.tenant_id,
            "dynamic",
            platform.issuer,
        )
        assert row.auth_token_url == platform.base + "/token"
        deployments = session.scalars(
            select(LtiDeployment.deployment_id).where(LtiDeployment.registration_id == row.id)
        ).all()
        assert deployments == [platform.deployment_id]

    # The platform now launches with the client id and deployment it was given.
    response = platform.launch(lti_world.browser(), platform.users["learner-1"])
    assert response.status_code == 200, response.text
    assert platform.problems == []


def test_registration_needs_a_valid_invitation(lti_world: LtiWorld) -> None:
    secret = lti_world.ctx.settings.secret_key
    forged = URLSafeTimedSerializer("another-secret", salt="x").dumps({"tenant": 1})
    cases = {"": "missing_invitation", forged: "invalid_invitation"}
    for token, reason in cases.items():
        status, page = _register(lti_world, tenant=token)
        assert status == 400 and reason_of(page) == reason
    # An invitation older than its lifetime is refused.
    later = time.time() + INVITATION_MAX_AGE.total_seconds() + 60
    old = invitation(secret, lti_world.tenant_id)
    with (
        mock.patch("itsdangerous.timed.time.time", return_value=later),
        lti_world.app.test_client() as client,
    ):
        page = client.get(f"/lti/register?tenant={old}").get_data(as_text=True)
    assert reason_of(page) == "invitation_expired"
    assert lti_world.platform.registrations == []
    assert len(_registrations(lti_world)) == 1  # only the fixture's manual one


def test_refusals_from_the_platform_side(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    status, page = _register(lti_world, registration_token="wrong")
    assert status == 502 and reason_of(page) == "platform_refused_registration"
    status, page = _register(lti_world, openid_configuration="not a url")
    assert status == 400 and reason_of(page) == "invalid_registration_request"
    status, page = _register(lti_world, openid_configuration="http://127.0.0.1:9/nothing")
    assert status == 502 and reason_of(page) == "platform_unreachable"
    platform.openid_overrides = {"issuer": "https://evil.example"}
    status, page = _register(lti_world)
    assert status == 400 and reason_of(page) == "invalid_platform_configuration"
    platform.openid_overrides = {"registration_endpoint": 42}
    status, page = _register(lti_world)
    assert status == 400 and reason_of(page) == "invalid_platform_configuration"
    assert platform.registrations == []
    assert len(_registrations(lti_world)) == 1


def test_issuer_must_be_on_the_configuration_site() -> None:
    body = {
        "issuer": "https://canvas.instructure.com",
        "authorization_endpoint": "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "token_endpoint": "https://sso.canvaslms.com/login/oauth2/token",
        "jwks_uri": "https://sso.canvaslms.com/api/lti/security/jwks",
        "registration_endpoint": "https://school.instructure.com/api/lti/registrations",
    }
    config = PlatformConfiguration.parse(
        "https://school.instructure.com/api/lti/security/openid-configuration", body
    )
    assert config.scopes_supported is None
    # With no scopes_supported, Questline asks for every scope it uses.
    assert len(tool_registration("https://q.example", config)["scope"].split()) == 4
    with pytest.raises(LtiRejected) as refused:
        PlatformConfiguration.parse("https://other.example/openid-configuration", body)
    assert refused.value.reason == "invalid_platform_configuration"
