"""The quests widget over HTTP on real PostgreSQL and Redis: running quests with progress and
time left, claiming from inside the iframe (once, idempotent, refused with a reason), and the
input checks of the claim form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import func, select

from questline.db import Database
from questline.rules_models import QuestClaim
from tests.conftest import TenantHandle, event
from tests.widgets.helpers import embed, ingest, player_id
from tests.widgets.test_instructor import example_rules, text
from widgets.quests import _claim_deadline, _period_end
from workers.rulesets import active_rule_book


def now_text(offset_minutes: int = 0) -> str:
    moment = datetime.now(UTC) - timedelta(minutes=offset_minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def quiz(event_id: str, actor: str, passed: bool = True, minutes_ago: int = 0) -> dict[str, object]:
    return event(
        event_id,
        type="quiz.submitted",
        actor=actor,
        at=now_text(minutes_ago),
        result={"score": 0.9 if passed else 0.2, "passed": passed},
    )


def xp_of(client: FlaskClient, tenant: TenantHandle, pid: int) -> int:
    response = client.get(f"/api/v1/players/{pid}", headers=tenant.auth)
    assert response.status_code == 200, response.get_json()
    return int(response.get_json()["xp"])


def claim_form(html: str) -> dict[str, str]:
    """The hidden fields of the first claim form on the page."""
    form = html.split('action="/widgets/quests/claim"')[1].split("</form>")[0]
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))


def test_running_quests_show_progress_and_time_left(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    ingest(client, tenant, [quiz("q1", "ada")])
    pid = player_id(client, tenant, "ada")
    path, _ = embed(client, tenant, player_id=pid, widget="quests")
    response = client.get(path)
    assert response.status_code == 200
    page = text(response.get_data(as_text=True))
    assert "Daily practice" in page and "100 XP this week" in page
    assert "1 of 2" in page  # one of the two passed quizzes today
    assert "Reward: +20 XP +5 coins" in page
    midnight = datetime.combine(
        datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC
    )
    hours = int((midnight - datetime.now(UTC)).total_seconds() // 3600)
    assert re.search(rf"\b({hours}|{max(hours - 1, 0)}) hours? left", page)
    assert "Claim reward" not in page  # nothing is complete yet
    assert "Launch week marathon" not in page  # a dated quest that has not started


def test_claim_gives_the_reward_once(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    ingest(client, tenant, [quiz("q1", "ada", minutes_ago=1), quiz("q2", "ada")])
    pid = player_id(client, tenant, "ada")
    before = xp_of(client, tenant, pid)
    path, token = embed(client, tenant, player_id=pid, widget="quests")
    html = client.get(path).get_data(as_text=True)
    fields = claim_form(html)
    assert fields["token"] == token and fields["quest"] == "daily-practice"
    claimed = client.post("/widgets/quests/claim", data=fields)
    assert claimed.status_code == 303
    shown = client.get(claimed.headers["Location"])
    assert shown.status_code == 200
    page = text(shown.get_data(as_text=True))
    assert "Reward claimed: +20 XP, +5 coins." in page
    daily = page.split("Daily practice")[1].split("100 XP this week")[0]
    assert "Claimed." in daily and "Claim reward" not in daily
    assert xp_of(client, tenant, pid) == before + 20
    again = client.post("/widgets/quests/claim", data=fields)  # a double click, a reload
    assert again.status_code == 303
    assert "Already claimed: you received +20 XP, +5 coins." in text(
        client.get(again.headers["Location"]).get_data(as_text=True)
    )
    assert xp_of(client, tenant, pid) == before + 20
    with db.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(QuestClaim).where(QuestClaim.player_id == pid)
        )
    assert count == 1


def test_a_claim_that_cannot_be_granted_says_why(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    ingest(client, tenant, [quiz("q1", "ada")])
    pid = player_id(client, tenant, "ada")
    before = xp_of(client, tenant, pid)
    _, token = embed(client, tenant, player_id=pid, widget="quests")
    today = datetime.now(UTC).date().isoformat()
    early = client.post(
        "/widgets/quests/claim", data={"token": token, "quest": "daily-practice", "period": today}
    )
    assert early.status_code == 409
    body = early.get_data(as_text=True)
    assert 'role="alert"' in body and "not completed yet" in body
    assert "Daily practice" in body  # the widget is still there, under the message
    unknown = client.post(
        "/widgets/quests/claim", data={"token": token, "quest": "nope", "period": today}
    )
    assert unknown.status_code == 404 and "nope" in unknown.get_json()["message"]
    in_query = client.post(
        f"/widgets/quests/claim?token={token}", data={"quest": "daily-practice", "period": today}
    )
    assert in_query.status_code == 403 and "form body" in in_query.get_json()["message"]
    no_period = client.post(
        "/widgets/quests/claim", data={"token": token, "quest": "daily-practice"}
    )
    assert no_period.status_code == 400 and "period" in no_period.get_json()["message"]
    forged = client.post(
        "/widgets/quests/claim",
        data={"token": token[:-2] + "xx", "quest": "daily-practice", "period": today},
    )
    assert forged.status_code == 403
    assert xp_of(client, tenant, pid) == before  # no reward was given


def test_the_quests_widget_in_spanish(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    ingest(client, tenant, [quiz("q1", "ada")])
    pid = player_id(client, tenant, "ada")
    path, _ = embed(client, tenant, player_id=pid, widget="quests", locale="es")
    page = text(client.get(path).get_data(as_text=True))
    assert "Misiones" in page and "Recompensa:" in page


def test_period_ends_and_claim_deadlines_in_the_learners_zone(
    db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    with db.sessions() as session:
        quests = {q.id: q for q in active_rule_book(session, tenant.id).all_quests()}
    zone = ZoneInfo("America/New_York")
    daily, weekly, dated = quests["daily-practice"], quests["weekly-100"], quests["launch-week"]
    assert _period_end(daily, "2026-11-23", zone) == datetime(2026, 11, 24, tzinfo=zone)
    assert _claim_deadline(daily, "2026-11-23", zone) == datetime(2026, 11, 25, tzinfo=zone)
    assert _period_end(weekly, "2026-W48", zone) == datetime(2026, 11, 30, tzinfo=zone)
    assert _claim_deadline(weekly, "2026-W48", zone) == datetime(2026, 12, 7, tzinfo=zone)
    assert _claim_deadline(weekly, "2026-W53", zone) == datetime(2027, 1, 11, tzinfo=zone)
    assert _period_end(dated, "dated", zone) == datetime(2026, 12, 8, tzinfo=UTC)
    assert _claim_deadline(dated, "dated", zone) is None


def test_a_course_quest_shows_in_its_course_and_where_the_learner_works_on_it(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    from workers.rulesets import store_version

    example_rules(db, tenant)
    sprint = {
        "quests": [
            {
                "id": "algebra-sprint",
                "name": "Algebra sprint",
                "period": "weekly",
                "objectives": [{"count": 3, "of": {"on": "lesson.completed"}}],
                "reward": {"xp": 30},
            }
        ]
    }
    with db.session() as session:
        store_version(session, tenant.id, sprint, course="course-9", actor="t")
    ingest(client, tenant, [quiz("q1", "ada")])  # course-1: no progress in course-9 yet
    pid = player_id(client, tenant, "ada")
    anywhere, _ = embed(client, tenant, player_id=pid, widget="quests")
    assert "Algebra sprint" not in text(client.get(anywhere).get_data(as_text=True))
    in_course, _ = embed(client, tenant, player_id=pid, widget="quests", course="course-9")
    page = text(client.get(in_course).get_data(as_text=True))
    assert "Algebra sprint" in page and "0 of 3" in page
    ingest(client, tenant, [event("c9", actor="ada", course="course-9", at=now_text())])
    page = text(client.get(anywhere).get_data(as_text=True))
    assert "Algebra sprint" in page and "1 of 3" in page


def test_a_badge_reward_is_named_after_the_claim(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    from tests.widgets.test_instructor import EXAMPLE
    from workers.rulesets import read_document, store_version

    document = read_document(EXAMPLE.read_text())
    document["quests"].append(
        {
            "id": "first-lesson",
            "name": "First lesson today",
            "period": "daily",
            "objectives": [{"count": 1, "of": {"on": "lesson.completed"}}],
            "reward": {"badge": "perfectionist"},
        }
    )
    with db.session() as session:
        store_version(session, tenant.id, document, course=None, actor="t")
    ingest(client, tenant, [event("l1", actor="ada", at=now_text())])
    pid = player_id(client, tenant, "ada")
    path, token = embed(client, tenant, player_id=pid, widget="quests")
    page = text(client.get(path).get_data(as_text=True))
    assert "Reward: badge Perfectionist" in page
    today = datetime.now(UTC).date().isoformat()
    claimed = client.post(
        "/widgets/quests/claim", data={"token": token, "quest": "first-lesson", "period": today}
    )
    assert claimed.status_code == 303
    shown = text(client.get(claimed.headers["Location"]).get_data(as_text=True))
    assert "Reward claimed: badge Perfectionist." in shown
    badges = client.get(f"/api/v1/players/{pid}/badges", headers=tenant.auth).get_json()
    assert "perfectionist" in str(badges)
