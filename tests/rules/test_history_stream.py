"""The replay's fast decoding of stored events (PostgreSQL columns taken apart server-side, and
``from_stored`` elsewhere) gives exactly the event ``parse_event`` gives for the stored
canonical form: every field the engine reads, for events with and without each part."""

from __future__ import annotations

from sqlalchemy import select

from engine.events import from_stored, parse_event
from questline.models import InboxEvent
from questline.rules_replay import _history
from tests.conftest import event
from tests.rules.helpers import post

EVENTS = [
    event(
        "full",
        actor="ann",
        score=0.75,
        at="2026-11-20T10:00:00+02:00",
        result={"score": 0.75, "passed": True, "duration": 90},
    ),
    {
        "id": "bare",
        "type": "session.started",
        "actor": {"email": "Bob@Example.org"},
        "occurred_at": "2026-11-21T08:00:00Z",
    },
    {
        "id": "zoned",
        "source": "moodle",
        "type": "quiz.submitted",
        "actor": {"id": "cat", "name": "Cat", "timezone": "Pacific/Auckland"},
        "object": {"id": "q1"},
        "result": {"passed": False},
        "extensions": {"k": [1, "v"]},
        "occurred_at": "2026-11-22T23:30:00-05:00",
    },
]


def test_streamed_history_equals_parsed_canonical_events(client, db, ctx, tenant):
    post(client, tenant, *EVENTS)
    with db.sessions() as session:
        stored = {
            row.id: parse_event(row.canonical)
            for row in session.scalars(select(InboxEvent).where(InboxEvent.tenant_id == tenant.id))
        }
        streamed = list(_history(session, tenant.id, since=None, course=None))
        only = list(_history(session, tenant.id, since=None, course="course-1"))
    assert len(streamed) == len(EVENTS) == len(stored)
    for inbox_id, _player, decoded in streamed:
        assert decoded == stored[inbox_id]
        assert from_stored(stored[inbox_id].to_dict()) == stored[inbox_id]
    assert [e.id for _i, _p, e in streamed] == ["full", "bare", "zoned"]  # event-time order
    assert [e.id for _i, _p, e in only] == ["full"]
