"""Erasure leaves nothing behind: after ``DELETE /api/v1/players/<id>`` no text or JSON column of
any table in the database still holds the person's name, email or LMS user id.

The person arrives the real ways: an LTI launch from the independent platform
(``lti1p3platform``), the course roster synced from it over NRPS, a CRM actor merged into the
same player (whose merged-away shell keeps the old name), and a webhook delivery for their email
still waiting in the inbox. The scan reads ``information_schema``, so a table added later by any
module is covered without touching this test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import requests
from sqlalchemy import select, text

from engine.events import parse_event
from lti.models import LtiCourse
from lti.roster import sync_all
from questline.ingest import IngestReport, store_events
from questline.models import PlayerIdentity
from questline.tenants import issue_key
from tests.lti.conftest import LtiWorld, lti_world  # noqa: F401 - the fixture, used by name
from tests.lti.platform import INSTRUCTOR, LEARNER, User

TEXT_TYPES = ("text", "character varying", "json", "jsonb")
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def _holding(world: LtiWorld, needle: str) -> list[str]:
    """Every ``table.column`` (text, varchar, json, jsonb) with a value containing ``needle``."""
    found = []
    with world.db.sessions() as session:
        columns = session.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type = ANY(:types)"
            ),
            {"types": list(TEXT_TYPES)},
        ).all()
        assert len(columns) > 50  # the scan really sees the schema
        for table, column in columns:
            hits = session.scalar(
                text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :needle'),
                {"needle": f"%{needle}%"},
            )
            if hits:
                found.append(f"{table}.{column}")
    return found


def test_erasure_leaves_no_copy_of_name_email_or_lms_id(lti_world: LtiWorld) -> None:  # noqa: F811
    mark = uuid.uuid4().hex[:12]
    platform, base = lti_world.platform, lti_world.tool_url
    person = User(f"lms-{mark}", f"Quentin Q{mark}", f"q{mark}@example.edu", [LEARNER])
    platform.users[person.sub] = person
    other = uuid.uuid4().hex[:12]  # event ids and the teacher: not the person's data
    teacher = User(f"teach-{other}", "Tess Teacher", f"t{other}@example.edu", [INSTRUCTOR])
    platform.users[teacher.sub] = teacher
    assert platform.launch(lti_world.browser(), person).status_code == 200
    assert platform.launch(lti_world.browser(), teacher).status_code == 200
    # Later the LMS makes them a teaching assistant: that launch's record (whole id_token,
    # name and email) is kept for the pages that post back.
    person.roles = [LEARNER, TA]
    assert platform.launch(lti_world.browser(), person).status_code == 200
    with lti_world.db.sessions() as session:
        course_id = session.scalar(
            select(LtiCourse.id).where(LtiCourse.tenant_id == lti_world.tenant_id)
        )
    lines = sync_all(lti_world.db, lti_world.ctx.settings.secret_key, datetime.now(UTC), course_id)
    assert lines and "failed" not in lines[0], lines

    with lti_world.db.session() as session:
        key = issue_key(session, lti_world.tenant_id, "test")
        player_id = session.scalar(
            select(PlayerIdentity.player_id).where(
                PlayerIdentity.tenant_id == lti_world.tenant_id,
                PlayerIdentity.value == f"lti:{lti_world.registration_id}:{person.sub}",
            )
        )
    auth = {"Authorization": f"Bearer {key}"}
    # The CRM knows the same person under its own id and name: merged into the LTI player.
    crm = {
        "id": f"crm-event-{other}",
        "type": "course.completed",
        "actor": {"id": f"crm-{mark}", "name": person.name},
        "occurred_at": "2026-11-20T10:00:00Z",
    }
    assert requests.post(f"{base}/api/v1/events", json=crm, headers=auth, timeout=10).ok
    crm_player = requests.get(
        f"{base}/api/v1/players", params={"actor": f"crm-{mark}"}, headers=auth, timeout=10
    ).json()["players"][0]["id"]
    merged = requests.post(
        f"{base}/api/v1/identity/merge",
        json={"source": crm_player, "target": player_id},
        headers=auth,
        timeout=10,
    )
    assert merged.status_code == 200, merged.text
    # A webhook delivery for their email, stored but not yet applied (no player yet).
    pending = {
        "id": f"hook-event-{other}",
        "type": "course.completed",
        "actor": {"email": person.email, "name": person.name},
        "occurred_at": "2026-11-21T10:00:00Z",
    }
    with lti_world.db.session() as session:
        store_events(
            session,
            lti_world.tenant_id,
            [(parse_event(pending), pending)],
            datetime.now(UTC),
            IngestReport(),
        )
    before = _holding(lti_world, mark)
    for expected in ("players.display_name", "lti_course_members.user_sub", "lti_launches.claims"):
        assert expected in before, before
    assert "inbox_events.raw" in before and "player_identities.value" in before

    erased = requests.delete(f"{base}/api/v1/players/{player_id}", headers=auth, timeout=10)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["unassigned_events_redacted"] == 1 and body["merged_shells_erased"] == 1
    assert body["lti_rows_removed"] >= 2  # launch record(s) and the course membership
    left = _holding(lti_world, mark)
    assert left == [], "\n".join(left)
    # The teacher, who was not erased, is all still there.
    assert "lti_course_members.user_sub" in _holding(lti_world, teacher.sub)
    # Boards keep the anonymised aggregate.
    player = requests.get(f"{base}/api/v1/players/{player_id}", headers=auth, timeout=10).json()
    assert player["xp"] > 0
