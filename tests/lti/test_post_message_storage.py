"""LTI Client Side postMessage Storage: when the platform offers ``lti_storage_target``, the
login page keeps the state in the platform's storage frame before going on to the auth URL,
and a launch that arrives without our cookie is continued only once its page has read that
state back. ``lti1p3platform`` has no storage frame, so these tests drive the pages'
contract (the data the scripts act on, and the requests they make) and the server's checks."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from tests.lti.conftest import LtiWorld
from tests.lti.platform import parse_form, post_form
from tests.lti.test_rejections import reason_of, visits


def _data(page: str) -> dict[str, str]:
    """The ``data-*`` attributes of the page's storage element (what its script reads)."""
    block = re.search(r'<div id="lti-storage"[^>]*>', page, re.S)
    assert block is not None, page
    return {
        k.replace("-", "_"): html.unescape(v)
        for k, v in re.findall(r'data-([a-z-]+)="([^"]*)"', block.group(0))
    }


def _login(world: LtiWorld, browser: requests.Session, target: str) -> requests.Response:
    platform = world.platform
    return browser.get(
        world.tool_url + "/lti/login",
        params={
            "iss": platform.issuer,
            "login_hint": "learner-1",
            "target_link_uri": world.tool_url + "/lti/launch",
            "lti_message_hint": "link:rl-1",
            "client_id": platform.client_id,
            "lti_deployment_id": platform.deployment_id,
            "lti_storage_target": target,
        },
        timeout=10,
    )


def _to_launch(browser: requests.Session, login_page: str) -> tuple[dict[str, str], dict]:
    """What the login page's script does once the storage answered: go to the auth URL."""
    data = _data(login_page)
    auth = browser.get(data["auth_url"], timeout=10)
    assert auth.status_code == 200, auth.text
    return data, parse_form(auth.text)


def test_login_page_puts_the_state_in_the_platform_storage(lti_world: LtiWorld) -> None:
    browser = lti_world.browser()
    answer = _login(lti_world, browser, "post_message_forwarding")
    assert answer.status_code == 200  # a page with a script, not a redirect
    data = _data(answer.text)
    assert data["subject"] == "lti.put_data"
    assert data["target"] == "post_message_forwarding"
    assert data["platform_origin"] == lti_world.platform.base  # the auth URL's origin
    auth = parse_qs(urlsplit(data["auth_url"]).query)
    assert auth["state"] == [data["state"]]
    assert data["key"] == "state_" + data["state"]
    # Without the storage (no answer, an error) the page starts a cookie-only login.
    fallback = parse_qs(urlsplit(data["fallback_url"]).query)
    assert "lti_storage_target" not in fallback and fallback["login_hint"] == ["learner-1"]
    # The cookie is still set, for browsers that keep it.
    assert any(c.name == f"lti1p3-{data['state']}" for c in browser.cookies)


def test_cookieless_launch_continues_once_the_page_read_the_state_back(
    lti_world: LtiWorld,
) -> None:
    browser = lti_world.browser()
    login_data, form = _to_launch(browser, _login(lti_world, browser, "_parent").text)
    browser.cookies.clear()  # the browser blocks our third-party cookie
    launch = post_form(browser, form)
    assert launch.status_code == 200, launch.text
    assert 'id="lv-title"' not in launch.text  # no widget before the check
    data = _data(launch.text)
    assert data["subject"] == "lti.get_data"
    assert (data["key"], data["state"], data["target"]) == (
        login_data["key"],
        login_data["state"],
        "_parent",
    )
    assert data["platform_origin"] == lti_world.platform.base
    assert visits(lti_world) == 1  # the visit counts; only the page waits
    # What the script posts when the storage gave back this state:
    continued = post_form(browser, parse_form(launch.text) | {"_action": _continue(launch)})
    assert continued.status_code == 200, continued.text
    assert 'id="lv-title"' in continued.text
    assert visits(lti_world) == 1


def test_continuing_with_another_logins_state_is_refused(lti_world: LtiWorld) -> None:
    browser = lti_world.browser()
    _, form = _to_launch(browser, _login(lti_world, browser, "_parent").text)
    browser.cookies.clear()
    launch = post_form(browser, form)
    other = _data(_login(lti_world, lti_world.browser(), "_parent").text)["state"]
    url = _continue(launch)
    refused = browser.post(url, data={"state": other}, timeout=10)
    assert refused.status_code == 401 and reason_of(refused.text) == "state_mismatch"
    forged = browser.post(url, data={"state": "1.2.p.x.y"}, timeout=10)
    assert forged.status_code == 401 and reason_of(forged.text) == "state_mismatch"
    unknown = browser.post(
        urljoin(url, "/lti/launch/not-a-launch/continue"), data={"state": other}, timeout=10
    )
    assert unknown.status_code == 400 and reason_of(unknown.text) == "unknown_launch"


def test_with_the_cookie_the_launch_needs_no_storage_check(lti_world: LtiWorld) -> None:
    browser = lti_world.browser()
    _, form = _to_launch(browser, _login(lti_world, browser, "_parent").text)
    launch = post_form(browser, form)
    assert launch.status_code == 200, launch.text
    assert 'id="lv-title"' in launch.text and "lti.get_data" not in launch.text


def test_an_overlong_storage_target_is_refused(lti_world: LtiWorld) -> None:
    answer = _login(lti_world, lti_world.browser(), "x" * 65)
    assert answer.status_code == 400 and reason_of(answer.text) == "invalid_login"


def _continue(launch: requests.Response) -> str:
    action = re.search(r'<form id="lti-continue" method="post" action="([^"]+)"', launch.text)
    assert action is not None, launch.text
    return urljoin(launch.url, html.unescape(action.group(1)))
