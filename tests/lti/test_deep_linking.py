"""Deep Linking 2.0 against the independent platform: the instructor picks a widget, the
platform verifies our signed response against /lti/jwks and keeps the content item."""

from __future__ import annotations

import re
from urllib.parse import urljoin

from sqlalchemy import select

from lti.deep_linking import WidgetChoice
from lti.models import LtiLaunch
from lti.views import widget_for_launch
from questline.models import InboxEvent
from tests.lti.conftest import LtiWorld
from tests.lti.platform import parse_form, post_form

CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"


def _choose(world: LtiWorld, user: str, choice: dict[str, str]) -> tuple[str, object]:
    browser = world.browser()
    page = world.platform.launch(browser, world.platform.users[user], hint="deep_link")
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    return page.text, (browser, urljoin(world.tool_url, action.group(1)) if action else None)


def test_instructor_picks_a_widget_and_the_platform_accepts_the_link(lti_world: LtiWorld) -> None:
    page, (browser, action) = _choose(lti_world, "teacher-1", {})
    assert "Add a Questline widget" in page and action is not None
    answer = browser.post(  # type: ignore[attr-defined]
        action, data={"widget": "leaderboard", "window": "week", "anonymise": "1", "size": "large"}
    )
    assert answer.status_code == 200, answer.text
    form = parse_form(answer.text)
    assert form["_action"] == lti_world.platform.base + "/deep_link_return"
    returned = post_form(browser, form)  # type: ignore[arg-type]
    assert returned.status_code == 200, returned.text
    platform = lti_world.platform
    assert platform.problems == []
    [item] = platform.deep_link_items
    assert item["type"] == "ltiResourceLink"
    assert item["url"] == lti_world.tool_url + "/lti/launch"
    assert item["custom"] == {
        "widget": "leaderboard",
        "window": "week",
        "anonymise": "true",
        "size": "large",
    }
    # The request's opaque data came back unchanged.
    assert platform.deep_link_data == [{"opaque": "round-trip-42"}]
    # A deep-linking launch is not a visit: no session.started.
    with lti_world.db.sessions() as session:
        kinds = session.scalars(
            select(InboxEvent.event_type).where(InboxEvent.tenant_id == lti_world.tenant_id)
        ).all()
        assert kinds == []
        assert (
            session.scalar(
                select(LtiLaunch.message_type).where(LtiLaunch.tenant_id == lti_world.tenant_id)
            )
            == "LtiDeepLinkingRequest"
        )


def test_learner_launch_of_the_created_link_shows_that_widget(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    platform.custom = {"widget": "streak", "window": "all_time", "anonymise": "false"}
    page = platform.launch(lti_world.browser(), platform.users["learner-1"])
    assert page.status_code == 200
    assert '<h1 id="st-title">Streak</h1>' in page.text  # the widgets package renders it
    platform.custom = {"widget": "leaderboard", "window": "week", "anonymise": "true"}
    board = platform.launch(lti_world.browser(), platform.users["learner-1"])
    assert board.status_code == 200
    # The board of the launch's own course, for the window the link asked for.
    assert "This week" in board.text and f"· {platform.context_id}" in board.text
    platform.custom = {"widget": "quests"}
    quests = platform.launch(lti_world.browser(), platform.users["learner-1"])
    assert 'data-widget="quests"' in quests.text
    assert '<h1 id="qs-title">Quests</h1>' in quests.text  # the widgets package renders it


def test_instructor_page_links_to_the_signed_roster_dashboard(lti_world: LtiWorld) -> None:
    import re

    platform = lti_world.platform
    browser = lti_world.browser()
    page = platform.launch(browser, platform.users["teacher-1"])
    link = re.search(r'id="roster-dashboard" href="([^"]+)"', page.text)
    assert link is not None
    url = urljoin(lti_world.tool_url, link.group(1).replace("&amp;", "&"))
    dashboard = browser.get(url)
    assert dashboard.status_code == 200, dashboard.text
    forged = browser.get(url.replace("token=", "token=x"))
    assert forged.status_code == 403


def test_the_launch_widget_seam_is_lenient_with_hand_made_links() -> None:
    """A learner can do nothing about a link's custom parameters: unknown values fall back to
    defaults instead of refusing the launch (the deep-linking form itself is strict)."""
    claims = {CUSTOM: {"widget": "casino", "window": "year", "anonymise": "TRUE", "size": "xl"}}
    assert widget_for_launch(claims) == WidgetChoice("level", "all_time", True, "medium")
    assert widget_for_launch({CUSTOM: "not a mapping"}) == widget_for_launch({})
    custom = {"widget": "leaderboard", "window": "week", "size": "small"}
    chosen = widget_for_launch({CUSTOM: custom})
    assert (chosen.widget, chosen.window, chosen.anonymise, chosen.size) == (
        "leaderboard",
        "week",
        False,
        "small",
    )
    assert chosen.title == "Leaderboard"


def test_learner_cannot_deep_link(lti_world: LtiWorld) -> None:
    page, _ = _choose(lti_world, "learner-1", {})
    assert "forbidden" in page


def test_bad_choice_and_unknown_launch_are_4xx(lti_world: LtiWorld) -> None:
    _page, (browser, action) = _choose(lti_world, "teacher-1", {})
    bad = browser.post(action, data={"widget": "casino"})  # type: ignore[attr-defined]
    assert bad.status_code == 400 and "invalid_choice" in bad.text
    unknown = browser.post(  # type: ignore[attr-defined]
        lti_world.tool_url + "/lti/deep-link/nope", data={"widget": "level"}
    )
    assert unknown.status_code == 400 and "unknown_launch" in unknown.text
