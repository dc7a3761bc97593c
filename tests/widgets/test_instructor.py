"""The badge shelf's progress and the instructor dashboard: roster, CSV export, award and revoke
with a reason, role checks. Real PostgreSQL and Redis, the example rule set from examples/."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from flask.testing import FlaskClient

from questline.db import Database
from tests.conftest import TenantHandle
from tests.widgets.helpers import embed, learners
from workers.rulesets import read_document, store_version

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules" / "tenant.yaml"


def example_rules(db: Database, tenant: TenantHandle) -> None:
    with db.session() as session:
        store_version(
            session, tenant.id, read_document(EXAMPLE.read_text()), course=None, actor="t"
        )


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_badge_shelf_shows_progress_toward_locked_badges(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    ids = learners(client, tenant, {"ada": 7})
    path, _ = embed(client, tenant, player_id=ids["ada"], widget="badges")
    shelf = text(client.get(path).get_data(as_text=True))
    assert "Bookworm 7 of 10 events (lesson.completed)" in shelf
    assert "Veteran level 1 of 5" in shelf
    assert "No badges yet." in shelf


def test_badge_shelf_shows_earned_badges_with_date(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    ids = learners(client, tenant, {"ada": 10})
    path, _ = embed(client, tenant, player_id=ids["ada"], widget="badges")
    shelf = text(client.get(path).get_data(as_text=True))
    assert "Bookworm Earned 2026-11-20" in shelf
    assert "Bookworm 7 of 10" not in shelf


def instructor(client: FlaskClient, tenant: TenantHandle, **body: object) -> str:
    path, token = embed(client, tenant, role="instructor", **body)
    assert path.startswith("/widgets/instructor?")
    return token


def test_roster_lists_players_and_exports_csv(client: FlaskClient, tenant: TenantHandle) -> None:
    learners(client, tenant, {"ada": 3, "=cmd": 1})
    token = instructor(client, tenant)
    page = text(client.get(f"/widgets/instructor?token={token}").get_data(as_text=True))
    assert "Roster" in page and "Ada 30" in page
    export = client.get(f"/widgets/instructor/roster.csv?token={token}")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [(r["name"], r["xp"]) for r in table] == [("Ada", "30"), ("'=Cmd", "10")]


def test_roster_narrows_to_the_tokens_course(client: FlaskClient, tenant: TenantHandle) -> None:
    learners(client, tenant, {"ada": 2})
    token = instructor(client, tenant, course="elsewhere")
    export = client.get(f"/widgets/instructor/roster.csv?token={token}").get_data(as_text=True)
    assert export.splitlines()[1:] == []
    token = instructor(client, tenant, course="course-1")
    export = client.get(f"/widgets/instructor/roster.csv?token={token}").get_data(as_text=True)
    assert export.splitlines()[1].endswith(",20")


def test_award_and_revoke_a_badge_with_a_reason(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    example_rules(db, tenant)
    ids = learners(client, tenant, {"ada": 1})
    token = instructor(client, tenant)
    base = f"/widgets/instructor/players/{ids['ada']}"
    missing = client.post(f"{base}/award", data={"token": token, "badge_id": "veteran"})
    assert missing.status_code == 400 and "reason" in missing.get_json()["message"]
    unknown = client.post(f"{base}/award", data={"token": token, "badge_id": "nope", "reason": "x"})
    assert unknown.status_code == 400 and "nope" in unknown.get_json()["message"]
    done = client.post(
        f"{base}/award", data={"token": token, "badge_id": "veteran", "reason": "helped peers"}
    )
    assert done.status_code == 303
    again = client.post(
        f"{base}/award", data={"token": token, "badge_id": "veteran", "reason": "twice"}
    )
    assert again.status_code == 409
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Badge awarded." in page and "Veteran" in page
    award_id = re.search(r'name="award_id" value="(\d+)"', page)
    assert award_id is not None
    revoked = client.post(
        f"{base}/revoke",
        data={"token": token, "award_id": award_id.group(1), "reason": "awarded by mistake"},
    )
    assert revoked.status_code == 303
    page = text(client.get(revoked.headers["Location"]).get_data(as_text=True))
    assert "Revoked: awarded by mistake" in page
    learner, _ = embed(client, tenant, player_id=ids["ada"], widget="badges")
    shelf = text(client.get(learner).get_data(as_text=True))
    assert "No badges yet." in shelf  # revoked badges leave the learner's shelf
    bad = client.post(f"{base}/revoke", data={"token": token, "award_id": "x", "reason": "r"})
    assert bad.status_code == 400


def test_roles_are_enforced(client: FlaskClient, tenant: TenantHandle) -> None:
    ids = learners(client, tenant, {"ada": 1})
    _, learner_token = embed(client, tenant, player_id=ids["ada"])
    refused = client.get(f"/widgets/instructor?token={learner_token}")
    assert refused.status_code == 403 and "instructor" in refused.get_json()["message"]
    token = instructor(client, tenant)
    assert client.get(f"/widgets/level?token={token}").status_code == 403
    assert client.get(f"/widgets/instructor/players/999999?token={token}").status_code == 404


def test_an_instructor_of_one_tenant_cannot_touch_another(
    client: FlaskClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    ids = learners(client, tenant, {"ada": 1})
    token = instructor(client, other_tenant)
    page = client.get(f"/widgets/instructor/players/{ids['ada']}?token={token}")
    assert page.status_code == 404
    export = client.get(f"/widgets/instructor/roster.csv?token={token}").get_data(as_text=True)
    assert "Ada" not in export
