"""One negative test per launch rejection in the issue: each answers a 4xx page naming the
reason, and nothing is recorded. Tokens are tampered after the platform issued them and
re-signed with the platform's key (or another), so only the tampered property is wrong."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select

from questline.models import InboxEvent
from tests.lti.conftest import LtiWorld
from tests.lti.platform import new_private_key, post_form

Claims = dict[str, Any]
DEPLOYMENT = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
VERSION = "https://purl.imsglobal.org/spec/lti/claim/version"


def reason_of(page: str) -> str:
    match = re.search(r'<span class="reason" id="reason">([^<]+)</span>', page)
    assert match is not None, page
    return match.group(1)


def tampered_launch(
    world: LtiWorld,
    change: Callable[[Claims], None],
    *,
    key: str | None = None,
    kid: str | None = None,
) -> tuple[int, str]:
    platform = world.platform
    browser = world.browser()
    form = platform.start_login(browser, platform.users["learner-1"])
    claims = jwt.decode(form["id_token"], options={"verify_signature": False})
    change(claims)
    form["id_token"] = platform.sign(claims, key=key, kid=kid)
    response = post_form(browser, form)
    return response.status_code, response.text


def visits(world: LtiWorld) -> int:
    with world.db.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(InboxEvent)
                .where(InboxEvent.tenant_id == world.tenant_id)
            )
            or 0
        )


def _set(name: str, value: Any) -> Callable[[Claims], None]:
    def change(claims: Claims) -> None:
        claims[name] = value

    return change


def _drop(name: str) -> Callable[[Claims], None]:
    def change(claims: Claims) -> None:
        claims.pop(name, None)

    return change


CASES: list[tuple[str, Callable[[Claims], None], str]] = [
    ("wrong issuer", _set("iss", "https://evil.example"), "wrong_issuer"),
    (
        "wrong aud",
        lambda c: (c.__setitem__("aud", "someone-else"), c.pop("azp")),
        "wrong_audience",
    ),
    ("wrong azp", _set("azp", "someone-else"), "wrong_azp"),
    (
        "several audiences, no azp",
        lambda c: (c.__setitem__("aud", [c["aud"], "other"]), c.pop("azp")),
        "wrong_azp",
    ),
    ("expired", lambda c: c.update(exp=int(time.time()) - 60), "token_expired"),
    (
        "future-dated",
        lambda c: c.update(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200),
        "token_not_yet_valid",
    ),
    ("missing deployment id", _drop(DEPLOYMENT), "missing_deployment"),
    ("unknown deployment id", _set(DEPLOYMENT, "deployment-x"), "unknown_deployment"),
    ("wrong message type", _set(MESSAGE_TYPE, "LtiSubmissionReviewRequest"), "wrong_message_type"),
    ("wrong LTI version", _set(VERSION, "1.1"), "wrong_lti_version"),
    ("nonce of another login", _set("nonce", "forged-nonce"), "state_mismatch"),
]


@pytest.mark.parametrize(("label", "change", "reason"), CASES, ids=[c[0] for c in CASES])
def test_tampered_token_is_refused(
    lti_world: LtiWorld, label: str, change: Callable[[Claims], None], reason: str
) -> None:
    status, page = tampered_launch(lti_world, change)
    assert 400 <= status < 500, page
    assert reason_of(page) == reason
    assert visits(lti_world) == 0


def test_bad_signature_is_refused(lti_world: LtiWorld) -> None:
    status, page = tampered_launch(lti_world, lambda c: None, key=new_private_key())
    assert status == 401
    assert reason_of(page) == "bad_signature"
    assert visits(lti_world) == 0


def test_unknown_kid_is_refused(lti_world: LtiWorld) -> None:
    status, page = tampered_launch(lti_world, lambda c: None, kid="not-a-platform-key")
    assert status == 401
    assert reason_of(page) == "unknown_kid"
    assert visits(lti_world) == 0


def test_replayed_nonce_is_refused(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    browser = lti_world.browser()
    form = platform.start_login(browser, platform.users["learner-1"])
    assert post_form(browser, form).status_code == 200
    replay = post_form(browser, form)
    assert replay.status_code == 401
    assert reason_of(replay.text) == "nonce_replayed"
    assert visits(lti_world) == 1


def test_state_mismatch_is_refused(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    browser = lti_world.browser()
    form = platform.start_login(browser, platform.users["learner-1"])
    other = platform.start_login(lti_world.browser(), platform.users["learner-1"])
    form["state"] = other["state"]
    response = post_form(browser, form)
    assert response.status_code == 401
    assert reason_of(response.text) == "state_mismatch"


def test_state_cookie_mismatch_is_refused(lti_world: LtiWorld) -> None:
    """A state the tool issued, but to another browser: this browser's cookie disagrees."""
    platform = lti_world.platform
    browser = lti_world.browser()
    form = platform.start_login(browser, platform.users["learner-1"])
    cookies = [c for c in browser.cookies if c.name == f"lti1p3-{form['state']}"]
    assert cookies, "the login set a state cookie"
    for cookie in cookies:
        cookie.value = "something-else"
    response = post_form(browser, form)
    assert reason_of(response.text) == "state_mismatch"


def test_launch_without_state_cookie_still_works(lti_world: LtiWorld) -> None:
    """The browser blocked the third-party cookie: the server-side state carries the launch."""
    platform = lti_world.platform
    browser = lti_world.browser()
    form = platform.start_login(browser, platform.users["learner-1"])
    browser.cookies.clear()
    response = post_form(browser, form)
    assert response.status_code == 200, response.text
    assert visits(lti_world) == 1


@pytest.mark.parametrize(
    "data",
    [{}, {"state": "s"}, {"id_token": "not-a-jwt", "state": "s"}, {"id_token": "a.b.c"}],
)
def test_garbage_launch_is_a_4xx_never_a_500(lti_world: LtiWorld, data: dict[str, str]) -> None:
    with lti_world.app.test_client() as client:
        response = client.post("/lti/launch", data=data)
    assert 400 <= response.status_code < 500
    assert "Reason:" in response.get_data(as_text=True)


def test_login_for_an_unknown_issuer_is_refused(lti_world: LtiWorld) -> None:
    with lti_world.app.test_client() as client:
        response = client.get("/lti/login?iss=https://nowhere.example&login_hint=x")
        missing = client.post("/lti/login", data={"iss": lti_world.platform.issuer})
    assert response.status_code == 401
    assert reason_of(response.get_data(as_text=True)) == "wrong_issuer"
    assert missing.status_code == 400


def _login_cookie(world: LtiWorld, base_url: str) -> str:
    platform = world.platform
    with world.app.test_client() as client:
        response = client.get(
            "/lti/login",
            base_url=base_url,
            query_string={
                "iss": platform.issuer,
                "login_hint": "learner-1",
                "client_id": platform.client_id,
                "lti_message_hint": "link:rl-1",
            },
        )
    assert response.status_code == 302, response.get_data(as_text=True)
    [cookie] = response.headers.getlist("Set-Cookie")
    return cookie


def test_state_cookie_is_samesite_none_and_secure_over_https(lti_world: LtiWorld) -> None:
    """Inside the LMS iframe the cookie is third-party: only SameSite=None; Secure survives."""
    cookie = _login_cookie(lti_world, "https://questline.example")
    assert "SameSite=None" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    # Plain HTTP (development) cannot carry Secure; browsers would drop SameSite=None then.
    plain = _login_cookie(lti_world, "http://127.0.0.1")
    assert "Secure" not in plain and "SameSite=None" not in plain


def test_https_public_url_marks_cookies_secure_behind_a_tls_proxy(lti_world: LtiWorld) -> None:
    lti_world.ctx.settings = replace(lti_world.ctx.settings, public_url="https://q.example")
    cookie = _login_cookie(lti_world, "http://127.0.0.1")  # TLS ended at the proxy
    assert "SameSite=None" in cookie and "Secure" in cookie
