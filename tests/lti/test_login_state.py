"""The signed login state (no row per login) and what the per-process caches may not hide:
a deployment removed from the database is refused at the next launch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import delete, func, select

from lti import login_state
from lti.models import LtiDeployment, LtiLaunch, LtiLoginState
from tests.lti.conftest import LtiWorld
from tests.lti.platform import post_form
from tests.lti.test_rejections import reason_of, visits

SECRET = "test-secret"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_state_verifies_only_unaltered_unexpired_and_with_our_secret() -> None:
    issued = login_state.issue(SECRET, 7, NOW)
    assert login_state.verify(SECRET, issued.state, NOW) == issued
    assert issued.registration_id == 7 and not issued.post_message
    assert login_state.verify("another-secret", issued.state, NOW) is None
    expired = NOW + login_state.LOGIN_STATE_LIFETIME + timedelta(seconds=1)
    assert login_state.verify(SECRET, issued.state, expired) is None
    # Claiming another registration (or flipping the binding flag) breaks the MAC.
    parts = issued.state.split(".")
    assert login_state.verify(SECRET, ".".join(["8", *parts[1:]]), NOW) is None
    assert login_state.verify(SECRET, ".".join([*parts[:2], "p", *parts[3:]]), NOW) is None
    assert login_state.verify(SECRET, "state-abc", NOW) is None


def test_each_state_has_its_own_nonce_only_the_tool_can_derive() -> None:
    one = login_state.issue(SECRET, 7, NOW, "post_message_forwarding")
    two = login_state.issue(SECRET, 7, NOW, "_parent")
    assert one.state != two.state and one.post_message
    assert login_state.verify(SECRET, one.state, NOW) == one
    assert login_state.verify(SECRET, two.state, NOW).storage_target == "_parent"  # type: ignore[union-attr]
    assert login_state.nonce_for(SECRET, one.state) == login_state.nonce_for(SECRET, one.state)
    assert login_state.nonce_for(SECRET, one.state) != login_state.nonce_for(SECRET, two.state)
    assert login_state.nonce_for(SECRET, one.state) != login_state.nonce_for("x", one.state)


def test_login_writes_nothing_and_a_learner_visit_keeps_no_launch_row(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    browser = lti_world.browser()
    form = platform.start_login(browser, platform.users["learner-1"])
    assert post_form(browser, form).status_code == 200
    with lti_world.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LtiLoginState)) == 0
        launches = session.scalar(
            select(func.count())
            .select_from(LtiLaunch)
            .where(LtiLaunch.tenant_id == lti_world.tenant_id)
        )
        assert launches == 0
    # An instructor's launch is referred to again (the gradebook form): it is kept.
    assert platform.launch(lti_world.browser(), platform.users["teacher-1"]).status_code == 200
    with lti_world.db.sessions() as session:
        kinds = session.scalars(
            select(LtiLaunch.message_type).where(LtiLaunch.tenant_id == lti_world.tenant_id)
        ).all()
        assert kinds == ["LtiResourceLinkRequest"]


def test_a_removed_deployment_is_refused_at_the_next_launch(lti_world: LtiWorld) -> None:
    """Registrations are cached per process; the deployment check is not."""
    platform = lti_world.platform
    learner = platform.users["learner-1"]
    assert platform.launch(lti_world.browser(), learner).status_code == 200
    with lti_world.db.session() as session:
        session.execute(
            delete(LtiDeployment).where(LtiDeployment.registration_id == lti_world.registration_id)
        )
    response = platform.launch(lti_world.browser(), learner)
    assert response.status_code == 401
    assert reason_of(response.text) == "unknown_deployment"
    assert visits(lti_world) == 1


def test_a_state_cannot_be_used_twice(lti_world: LtiWorld) -> None:
    """The state is not stored, so its single use rests on its nonce's: a second id_token
    for the same login (same nonce) is refused."""
    platform = lti_world.platform
    browser = lti_world.browser()
    form = platform.start_login(browser, platform.users["learner-1"])
    assert post_form(browser, form).status_code == 200
    claims = jwt.decode(form["id_token"], options={"verify_signature": False})
    claims["iat"] = claims["iat"] + 1  # another token, same login
    again = dict(form, id_token=platform.sign(claims))
    response = post_form(browser, again)
    assert response.status_code == 401
    assert reason_of(response.text) == "nonce_replayed"


def test_platform_keys_are_fetched_once_and_parsed_once() -> None:
    """Threads of a worker that miss together share one fetch; the key object is reused."""
    from concurrent.futures import ThreadPoolExecutor

    from lti1p3platform.registration import Registration
    from werkzeug.wrappers import Response

    from lti.tool_config import JwksCache
    from tests.lti.platform import platform_private_key, public_pem, serve

    jwk = Registration.get_jwk(public_pem(platform_private_key()))
    fetches: list[int] = []

    def app(environ: dict, start_response: object) -> object:
        fetches.append(1)
        body = json.dumps({"keys": [jwk]})
        return Response(body, content_type="application/json")(environ, start_response)  # type: ignore[arg-type]

    cache = JwksCache()
    with serve(app) as url, ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: cache.public_key(url, jwk["kid"], "RS256"), range(8)))
        assert len(fetches) == 1
        assert all(k is keys[0] for k in keys) and keys[0] is not None
        assert cache.public_key(url, "unknown-kid", "RS256") is None
        assert cache.public_key(url, jwk["kid"], "RS512") is None  # the key is for RS256
        assert len(fetches) == 1
