"""Instructor roles from LTI launches: an LMS context role makes the player an instructor of that
course only, for the identity API and /me, whichever way the person reaches Questline.

Both peers are real: the launches come from the independent LTI platform (``lti1p3platform``)
and the instructor then signs in through the OpenID provider (``oidc-provider``) with the same
verified email, which links the SSO login to the player the launches made.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from sqlalchemy import select

from identity.config import configure_sso
from identity.roles import context_role, is_course_staff
from questline.models import Player
from tests.identity.conftest import Idp, parse_form
from tests.lti.conftest import LtiWorld, lti_world  # noqa: F401 - the fixture, used by name
from tests.lti.platform import INSTRUCTOR, LEARNER, User

INSTITUTION_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


@pytest.mark.parametrize(
    ("roles", "staff"),
    [
        ([INSTRUCTOR], True),
        ([TA], True),
        (["http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator"], True),
        (["Instructor"], True),  # deprecated simple name: a context role
        (["urn:lti:role:ims/lis/TeachingAssistant"], True),
        ([LEARNER], False),
        ([LEARNER, INSTITUTION_INSTRUCTOR], False),  # faculty taking a course as a learner
        (["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"], False),
        (["http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#Instructor"], False),
        ([], False),
        ([None, 3], False),
    ],
)
def test_course_staff_comes_from_context_roles_only(roles: list[str], staff: bool) -> None:
    assert is_course_staff(roles) is staff


def test_sub_role_belongs_to_its_principal_role() -> None:
    assert context_role(TA) == "Instructor"
    assert context_role(INSTITUTION_INSTRUCTOR) is None


def _sso_sign_in(world: LtiWorld, idp: Idp, user: str) -> requests.Session:
    """Configure SSO for the LTI world's tenant at the real provider, then sign ``user`` in."""
    client_id, secret = f"ql-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    idp.add_client(
        client_id=client_id,
        client_secret=secret,
        redirect_uris=[f"{world.tool_url}/sso/{world.tenant_id}/callback"],
        post_logout_redirect_uris=[f"{world.tool_url}/sso/logged-out"],
        grant_types=["authorization_code"],
        response_types=["code"],
        token_endpoint_auth_method="client_secret_basic",
    )
    values = {"issuer": idp.issuer, "client_id": client_id, "client_secret": secret}
    with world.db.session() as session:
        configure_sso(
            session, world.tenant_id, values, "test", secret_key=world.ctx.settings.secret_key
        )
    browser = requests.Session()
    page = browser.get(f"{world.tool_url}/sso/{world.tenant_id}/login", timeout=20)
    action, fields = parse_form(page.text)
    fields.update(login=user, password=f"{user}-pw")
    done = browser.post(requests.compat.urljoin(page.url, action), data=fields, timeout=20)
    assert done.status_code == 200, done.text[:300]
    return browser


def _launch(world: LtiWorld, user: User, course: str) -> requests.Response:
    world.platform.context_id = course
    response = world.platform.launch(world.browser(), user)
    assert response.status_code == 200, response.text[:300]
    return response


def _player_id(browser: requests.Session, base: str) -> int:
    return int(browser.get(base + "/api/v1/me", timeout=10).json()["id"])


def test_instructor_launch_makes_an_instructor_of_that_course_only(
    lti_world: LtiWorld,  # noqa: F811 - the imported fixture
    idp: Idp,
) -> None:
    platform, base = lti_world.platform, lti_world.tool_url
    # Alice teaches course-101 in the LMS, and takes course-202 as a learner; Canvas sends her
    # institution role "Instructor" in both.
    alice = User("lms-alice", "Alice Example", "alice@acme.test", [INSTRUCTOR])
    platform.users[alice.sub] = alice
    learner_101 = platform.add_user("learner-101", "Lou In-101", [LEARNER])
    _launch(lti_world, learner_101, "course-101")
    assert "lv-title" not in _launch(lti_world, alice, "course-101").text  # instructor page

    learner_202 = platform.add_user("learner-202", "Lee In-202", [LEARNER])
    _launch(lti_world, learner_202, "course-202")
    alice.roles = [LEARNER, INSTITUTION_INSTRUCTOR]
    assert 'id="lv-title"' in _launch(lti_world, alice, "course-202").text  # a learner's widget

    # The same person signs in by SSO: her verified email joins the LTI player.
    browser = _sso_sign_in(lti_world, idp, "alice")
    roster = browser.get(f"{base}/api/v1/identity/courses/course-101/players", timeout=10)
    assert roster.status_code == 200, roster.text
    names = {p["display_name"] for p in roster.json()["players"]}
    assert {"Lou In-101", "Alice Example"} <= names and "Lee In-202" not in names
    assert all(
        set(p) == {"id", "display_name", "level", "course_xp"} for p in roster.json()["players"]
    )
    other = browser.get(f"{base}/api/v1/identity/courses/course-202/players", timeout=10)
    assert other.status_code == 403
    unknown = browser.get(f"{base}/api/v1/identity/courses/course-999/players", timeout=10)
    assert unknown.status_code == 403

    ids = {p["display_name"]: p["id"] for p in roster.json()["players"]}
    read = browser.get(f"{base}/api/v1/identity/players/{ids['Lou In-101']}", timeout=10)
    assert read.status_code == 200 and "identities" not in read.json()
    with lti_world.db.sessions() as session:
        lee = session.scalar(select(Player.id).where(Player.display_name == "Lee In-202"))
    assert browser.get(f"{base}/api/v1/identity/players/{lee}", timeout=10).status_code == 403
    assert "Instructor of: course-101" in browser.get(base + "/me", timeout=10).text
    # Teaching is not administering.
    assert browser.get(f"{base}/api/v1/identity/audit", timeout=10).status_code == 403

    # The LMS demotes her in course-101: her next launch there ends the role at once.
    alice.roles = [LEARNER]
    _launch(lti_world, alice, "course-101")
    again = browser.get(f"{base}/api/v1/identity/courses/course-101/players", timeout=10)
    assert again.status_code == 403
    me = _player_id(browser, base)
    assert me in ids.values()  # still the same player throughout


def test_tenant_admin_lists_any_course_and_unknown_course_is_404(
    lti_world: LtiWorld,  # noqa: F811 - the imported fixture
) -> None:
    platform, base = lti_world.platform, lti_world.tool_url
    learner = platform.add_user("learner-x", "Xia Learner", [LEARNER])
    _launch(lti_world, learner, "course-303")
    key = _tenant_key(lti_world)
    listed = requests.get(
        f"{base}/api/v1/identity/courses/course-303/players", headers=key, timeout=10
    )
    assert listed.status_code == 200
    assert [p["display_name"] for p in listed.json()["players"]] == ["Xia Learner"]
    missing = requests.get(f"{base}/api/v1/identity/courses/nope/players", headers=key, timeout=10)
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def _tenant_key(world: LtiWorld) -> dict[str, str]:
    """A fresh API key of the LTI world's tenant."""
    from questline.tenants import issue_key

    with world.db.session() as session:
        key = issue_key(session, world.tenant_id, "test")
    return {"Authorization": f"Bearer {key}"}
