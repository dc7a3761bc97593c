"""The instructor's rules page: view the course rule set, live validation per path (JSON for the
script, the page for a plain submit), simulation over the course's stored events, activation with
and without retro, and the token rules (POST body only, instructor role). Real PostgreSQL and
Redis; events go through the real ingest path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from questline.db import Database
from tests.conftest import TenantHandle, event
from tests.widgets.helpers import embed, ingest, player_id
from tests.widgets.test_instructor import text
from widgets.rules_page import check_text, line_of
from workers.rulesets import read_document, store_version, versions

RULES = "/widgets/instructor/rules"
COURSE_RULES = """version: 2
xp:
  - id: lesson-completed
    on: lesson.completed
    points: 25
badges:
  - id: starter
    name: Starter
    criteria:
      count: 2
      of: {on: lesson.completed}
"""


def instructor(client: FlaskClient, tenant: TenantHandle, course: str = "course-1") -> str:
    return embed(client, tenant, role="instructor", course=course)[1]


def recent_lessons(client: FlaskClient, tenant: TenantHandle, counts: dict[str, int]) -> None:
    """Lessons of course-1 in the last days (inside the simulation's shortest window)."""
    start = datetime.now(UTC) - timedelta(days=2)
    ingest(
        client,
        tenant,
        [
            event(
                f"{actor}-r{i}",
                actor=actor,
                at=(start + timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            for actor, n in counts.items()
            for i in range(n)
        ],
    )


def test_the_page_shows_the_courses_active_rules_or_a_starter(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    token = instructor(client, tenant)
    page = client.get(f"{RULES}?token={token}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "the tenant rules apply" in body and "xp: []" in body
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    with db.session() as session:
        store_version(session, tenant.id, read_document(COURSE_RULES), course="course-1", actor="t")
    body = client.get(f"{RULES}?token={token}").get_data(as_text=True)
    assert "Active version: 1." in body and "points: 25" in body
    # Another course's instructor sees that course's (empty) rule set, not this one.
    other = instructor(client, tenant, course="course-2")
    assert "points: 25" not in client.get(f"{RULES}?token={other}").get_data(as_text=True)


def test_live_check_answers_errors_per_path_with_their_line(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    token = instructor(client, tenant)
    broken = COURSE_RULES.replace("count: 2", "count: -2").replace("points: 25", "points: 2 *")
    answer = client.post(
        f"{RULES}/check",
        data={"token": token, "document": broken},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 422
    errors = {e["path"]: e for e in answer.get_json()["errors"]}
    assert set(errors) == {"xp[0].points", "badges[0].criteria.count"}
    assert errors["badges[0].criteria.count"]["line"] == 10
    assert errors["xp[0].points"]["line"] == 5
    assert "positive" in errors["badges[0].criteria.count"]["message"]
    fine = client.post(
        f"{RULES}/check",
        data={"token": token, "document": COURSE_RULES},
        headers={"Accept": "application/json"},
    )
    assert fine.status_code == 200 and fine.get_json() == {"ok": True, "errors": []}
    # A course rule set may not define levels: the checker runs in the course's scope.
    levels = client.post(
        f"{RULES}/check",
        data={"token": token, "document": COURSE_RULES + "levels: {table: [0, 100]}\n"},
        headers={"Accept": "application/json"},
    )
    assert [e["path"] for e in levels.get_json()["errors"]] == ["levels"]


def test_check_works_without_javascript(client: FlaskClient, tenant: TenantHandle) -> None:
    token = instructor(client, tenant)
    page = client.post(f"{RULES}/check", data={"token": token, "document": "xp: [1]\n"})
    assert page.status_code == 422 and page.mimetype == "text/html"
    body = text(page.get_data(as_text=True))
    assert "1 error" in body and "xp[0]" in body and "(line 1)" in body
    assert "xp: [1]" in page.get_data(as_text=True)  # the draft is kept in the editor
    ok = client.post(f"{RULES}/check", data={"token": token, "document": COURSE_RULES})
    assert ok.status_code == 200 and "No errors." in ok.get_data(as_text=True)


def test_unreadable_yaml_points_at_its_line() -> None:
    _, errors = check_text("xp:\n  - id: a\n    on: [x\n", None)
    assert len(errors) == 1 and errors[0].path == "$" and "YAML" in errors[0].message
    assert errors[0].line is not None and errors[0].line >= 3
    _, errors = check_text("   \n", "c")
    assert errors[0].message.startswith("the rule set is empty")
    assert line_of("a:\n  b: [1, 2]\n", "a.missing") == 1  # the deepest part that exists


def test_simulate_shows_differences_per_player_and_writes_nothing(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    recent_lessons(client, tenant, {"ada": 3, "bo": 1})
    token = instructor(client, tenant)
    before = client.get(f"/api/v1/players/{player_id(client, tenant, 'ada')}", headers=tenant.auth)
    page = client.post(
        f"{RULES}/simulate", data={"token": token, "document": COURSE_RULES, "window": "7d"}
    )
    assert page.status_code == 200, page.get_data(as_text=True)
    body = text(page.get_data(as_text=True))
    assert "4 events of 2 players replayed (last 7d); 2 players would change." in body
    assert "Ada 30 75 +45 + starter" in body.replace("(", "").replace(")", "")
    assert "Bo 10 25 +15" in body
    after = client.get(f"/api/v1/players/{player_id(client, tenant, 'ada')}", headers=tenant.auth)
    assert after.get_json() == before.get_json()
    with db.sessions() as session:
        assert versions(session, tenant.id, "course-1") == []
    bad = client.post(
        f"{RULES}/simulate", data={"token": token, "document": COURSE_RULES, "window": "1y"}
    )
    assert bad.status_code == 400 and "window" in bad.get_json()["message"]
    invalid = client.post(
        f"{RULES}/simulate", data={"token": token, "document": "xp: 3", "window": "7d"}
    )
    assert invalid.status_code == 422 and "Simulation" not in invalid.get_data(as_text=True)


def test_activate_without_and_with_retro(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    recent_lessons(client, tenant, {"ada": 3})
    ada = player_id(client, tenant, "ada")
    token = instructor(client, tenant)
    done = client.post(
        f"{RULES}/activate", data={"token": token, "document": COURSE_RULES, "retro": "0"}
    )
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Version 1 is active." in page
    xp = client.get(f"/api/v1/players/{ada}", headers=tenant.auth).get_json()["xp"]
    assert xp == 30  # new rules apply to new events only
    retro = client.post(
        f"{RULES}/activate",
        data={"token": token, "document": COURSE_RULES.replace("25", "20"), "retro": "1"},
    )
    assert retro.status_code == 303
    assert "history was re-scored" in client.get(retro.headers["Location"]).get_data(as_text=True)
    xp = client.get(f"/api/v1/players/{ada}", headers=tenant.auth).get_json()["xp"]
    assert xp == 60  # 3 lessons re-scored at 20 XP
    with db.sessions() as session:
        found = versions(session, tenant.id, "course-1")
    assert [(v.version, v.active) for v in found] == [(2, True), (1, False)]
    bad = client.post(
        f"{RULES}/activate", data={"token": token, "document": COURSE_RULES, "retro": "x"}
    )
    assert bad.status_code == 400 and "retro" in bad.get_json()["message"]
    invalid = client.post(f"{RULES}/activate", data={"token": token, "document": "xp: 3"})
    assert invalid.status_code == 422 and "xp" in text(invalid.get_data(as_text=True))


def test_token_rules(client: FlaskClient, tenant: TenantHandle) -> None:
    token = instructor(client, tenant)
    in_url = client.post(f"{RULES}/activate?token={token}", data={"document": COURSE_RULES})
    assert in_url.status_code == 400 and "form body" in in_url.get_json()["message"]
    missing = client.post(f"{RULES}/activate", data={"document": COURSE_RULES})
    assert missing.status_code == 403
    forged = client.post(f"{RULES}/check", data={"token": token + "x", "document": "xp: []"})
    assert forged.status_code == 403
    no_doc = client.post(f"{RULES}/check", data={"token": token})
    assert no_doc.status_code == 400 and "document" in no_doc.get_json()["message"]
    ingest(client, tenant, [event("e1", actor="ada")])
    _, learner = embed(client, tenant, player_id=player_id(client, tenant, "ada"))
    refused = client.get(f"{RULES}?token={learner}")
    assert refused.status_code == 403 and "instructor" in refused.get_json()["message"]
