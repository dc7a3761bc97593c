"""The learner dashboard's daily goal (XP today in the learner's zone against the rule set's goal
or the tenant default) and mastery per module (best scores, or completion share), over HTTP on
real PostgreSQL and Redis."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from engine.rules import InvalidRules, parse_rules
from questline.db import Database
from tests.conftest import TenantHandle, event
from tests.widgets.helpers import embed, ingest, player_id
from tests.widgets.test_instructor import text
from workers.rulesets import store_version

ZONE = "Pacific/Kiritimati"  # UTC+14: its day and the UTC day differ for most of the day


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kim(event_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    body = event(event_id, at=stamp(at), **fields)
    body["actor"] = {"id": "kim", "name": "Kim", "timezone": ZONE}
    return body


def dashboard(client: FlaskClient, tenant: TenantHandle, actor: str) -> str:
    path, _ = embed(client, tenant, player_id=player_id(client, tenant, actor), widget="dashboard")
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_daily_goal_counts_the_learners_local_day_against_the_default(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    local_midnight = datetime.now(ZoneInfo(ZONE)).replace(hour=0, minute=0, second=0)
    ingest(
        client,
        tenant,
        [
            kim("yesterday", local_midnight - timedelta(minutes=1)),  # 10 XP, yesterday there
            kim("today-1", local_midnight + timedelta(seconds=1)),
            kim("today-2", local_midnight + timedelta(seconds=2)),
        ],
    )
    html = dashboard(client, tenant, "kim")
    page = text(html)
    assert "Daily goal" in page
    assert "20 of 50 XP today: 30 XP to go." in page  # the tenant default (settings): 50
    assert re.search(r'<svg role="img" aria-labelledby="goal-title goal-text"', html)
    assert ">40%</text>" in html


def test_daily_goal_from_the_rule_set(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    with db.session() as session:
        document = {"xp": [{"id": "l", "on": "lesson.completed", "points": 15}]}
        document |= {"goals": {"daily_xp": 30}}
        store_version(session, tenant.id, document, course=None, actor="t")
    now = datetime.now(UTC)
    ingest(client, tenant, [event(f"e{i}", actor="ada", at=stamp(now)) for i in range(2)])
    page = text(dashboard(client, tenant, "ada"))
    assert "Goal met: 30 of 30 XP today." in page


def test_mastery_per_module_is_best_score_or_completion_share(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    at = stamp(datetime.now(UTC) - timedelta(hours=1))
    quiz = {"type": "quiz.submitted", "actor": "ada", "at": at}
    ingest(
        client,
        tenant,
        [
            # course-1: quiz a best 0.9 (of 0.6, 0.9), quiz b 0.7 -> mean best score 80%
            event("qa1", object={"id": "quiz-a"}, result={"score": 0.6}, **quiz),
            event("qa2", object={"id": "quiz-a"}, result={"score": 0.9}, **quiz),
            event("qb1", object={"id": "quiz-b"}, result={"score": 0.7}, **quiz),
            # course-2: two of three items completed (the third only opened) -> 67%
            event("c1", actor="ada", course="course-2", object={"id": "l-1"}, at=at),
            event("c2", actor="ada", course="course-2", object={"id": "l-2"}, at=at),
            event(
                "c3",
                actor="ada",
                course="course-2",
                type="session.started",
                object={"id": "l-3"},
                at=at,
            ),
        ],
    )
    page = text(dashboard(client, tenant, "ada"))
    mastery = page.split("Mastery by module")[1]
    assert "course-1 80% mean best score, 2 scored items" in mastery
    assert "course-2 67% 2 of 3 items completed" in mastery
    assert mastery.index("course-1") < mastery.index("course-2")  # best first


def test_mastery_of_items_only_opened_and_the_empty_state(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    ingest(client, tenant, [event("s1", actor="bo", type="session.started", object={"id": "x"})])
    page = text(dashboard(client, tenant, "bo"))
    assert "course-1 0% 0 of 1 items completed" in page
    bare = event("z", actor="cy")
    del bare["object"]  # no object: nothing to master
    ingest(client, tenant, [bare])
    assert "No scored or completed items yet." in text(dashboard(client, tenant, "cy"))


@pytest.mark.parametrize(
    ("goals", "message"),
    [
        ({"daily_xp": 0}, "goals.daily_xp: must be an integer from 1"),
        ({"daily_xp": True}, "goals.daily_xp"),
        ({"weekly_xp": 5}, "goals.weekly_xp: unknown field"),
        ([50], "goals: must be an object"),
    ],
)
def test_bad_goals_are_refused_with_their_path(goals: Any, message: str) -> None:
    with pytest.raises(InvalidRules) as caught:
        parse_rules({"goals": goals})
    assert any(message in e for e in caught.value.errors), caught.value.errors


def test_goals_are_tenant_wide() -> None:
    assert parse_rules({"goals": {"daily_xp": 40}}).daily_xp_goal == 40
    assert parse_rules({}).daily_xp_goal is None
    with pytest.raises(InvalidRules, match="only the tenant rule set defines goals"):
        parse_rules({"goals": {"daily_xp": 40}}, scope="course")
