"""Nudge banners in the widgets: a streak about to end near the learner's local midnight, a badge
one step away; at most one; the learner can turn them off and on."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient

from questline.db import Database
from tests.conftest import TenantHandle
from tests.widgets.helpers import embed, learners
from tests.widgets.test_instructor import example_rules, text
from widgets.data import LockedBadge, StreakView
from widgets.nudges import badge_near, streak_at_risk
from widgets.render import fragment, parse_params, use_locale


def render_at(app: Flask, name: str, tenant: TenantHandle, player: int, at: str) -> str:
    with app.test_request_context("/widgets"):
        use_locale("en")
        now = datetime.fromisoformat(at).replace(tzinfo=UTC)
        return text(fragment(name, tenant.id, player, parse_params({}), token="t", now=now))


def test_streak_banner_only_in_the_last_hours_of_the_local_day(
    app: Flask, client: FlaskClient, tenant: TenantHandle
) -> None:
    ada = learners(client, tenant, {"ada": 1})["ada"]  # active on 2026-11-20: a 1-day streak
    late = render_at(app, "level", tenant, ada, "2026-11-21T20:30:00")
    assert "Your 1-day streak ends in 3 h: one activity today keeps it." in late
    assert "Turn off reminders" in late
    assert "streak ends" not in render_at(app, "level", tenant, ada, "2026-11-21T10:00:00")
    # The same day still counts: nothing at risk.
    assert "streak ends" not in render_at(app, "level", tenant, ada, "2026-11-20T22:00:00")


def test_turning_reminders_off_and_on(
    app: Flask, client: FlaskClient, tenant: TenantHandle
) -> None:
    ada = learners(client, tenant, {"ada": 1})["ada"]
    _, token = embed(client, tenant, player_id=ada, widget="streak")
    off = client.post("/widgets/nudges", data={"token": token, "off": "1", "back": "streak"})
    assert off.status_code == 303 and "/widgets/streak?" in off.headers["Location"]
    assert "streak ends" not in render_at(app, "streak", tenant, ada, "2026-11-21T20:30:00")
    page = client.get(off.headers["Location"]).get_data(as_text=True)
    assert "Turn on reminders" in page
    client.post("/widgets/nudges", data={"token": token, "off": "0"})
    assert "streak ends" in render_at(app, "streak", tenant, ada, "2026-11-21T20:30:00")
    bad = client.post("/widgets/nudges", data={"token": token, "off": "2"})
    assert bad.status_code == 400 and "off" in bad.get_json()["message"]
    bad = client.post("/widgets/nudges", data={"token": token, "off": "1", "back": "x"})
    assert bad.status_code == 400 and "back" in bad.get_json()["message"]


def test_badge_one_step_away(
    app: Flask, client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    ada = learners(client, tenant, {"ada": 9})["ada"]
    shelf = render_at(app, "badges", tenant, ada, "2026-11-20T12:00:00")
    assert "One more step to earn Bookworm!" in shelf


def test_badge_near_needs_every_other_criterion_met() -> None:
    def badge(*progress: tuple[str, str, int, int]) -> LockedBadge:
        return LockedBadge("b", "B", "", "", list(progress))

    assert badge_near([badge(("count", "", 9, 10))]) is not None
    assert badge_near([badge(("count", "", 8, 10))]) is None
    assert badge_near([badge(("count", "", 9, 10), ("streak", "", 2, 5))]) is None
    assert badge_near([badge(("count", "", 9, 10), ("streak", "", 5, 5))]) is not None
    assert badge_near([badge(("sum_of", "", 17999, 18000))]) is None  # not one "step"


def test_streak_at_risk_rule() -> None:
    assert streak_at_risk(StreakView(3, 3, False, 5, 0, "UTC")) is not None
    assert streak_at_risk(StreakView(3, 3, False, 6, 0, "UTC")) is None
    assert streak_at_risk(StreakView(3, 3, True, 1, 0, "UTC")) is None
    assert streak_at_risk(StreakView(0, 3, False, 1, 0, "UTC")) is None
