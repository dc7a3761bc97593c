"""IMS Caliper 1.1 envelopes (``{sensor, sendTime, dataVersion, data: [event]}``), generic and
as Canvas sends them. The event ``id`` is the idempotency key and ``eventTime`` the time; in a
``GradeEvent`` the actor is the grader, so the learner is ``object.assignee``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.events import ActivityEvent, Result
from webhooks.connections import ConnectionInfo
from webhooks.delivery import (
    MAX_EVENTS_PER_DELIVERY,
    Events,
    actor,
    build,
    event_type,
    fraction,
    iso_time,
    obj,
    parse_each,
    text,
)
from webhooks.errors import InvalidPayload

TYPES = {
    ("AssessmentEvent", "Submitted"): "quiz.submitted",
    ("AssignableEvent", "Submitted"): "assignment.submitted",
    ("AssignableEvent", "Completed"): "lesson.completed",
    ("GradeEvent", "Graded"): "assignment.graded",
    ("SessionEvent", "LoggedIn"): "session.started",
}
CANVAS_USER = "urn:instructure:canvas:user:"
CANVAS_COURSE = "urn:instructure:canvas:course:"


def _id(value: Any) -> str | None:
    """An entity's id: Caliper allows the entity inline or as a bare IRI."""
    if isinstance(value, Mapping):
        return text(value.get("id"))
    return text(value)


def _learner(event: Mapping[str, Any]) -> Any:
    if event.get("type") == "GradeEvent":
        target = event.get("object")
        if isinstance(target, Mapping) and target.get("assignee") is not None:
            return _id(target["assignee"])
        generated = event.get("generated")
        attempt = generated.get("attempt") if isinstance(generated, Mapping) else None
        if isinstance(attempt, Mapping) and attempt.get("assignee") is not None:
            return _id(attempt["assignee"])
    return _id(event.get("actor"))


def _score(event: Mapping[str, Any]) -> float | None:
    generated = event.get("generated")
    if event.get("type") != "GradeEvent" or not isinstance(generated, Mapping):
        return None
    return fraction(generated.get("scoreGiven"), generated.get("maxScore"))


def from_caliper_payload(data: Any, conn: ConnectionInfo, *, canvas: bool = False) -> Events:
    """Every event of an envelope (a bare event is taken as an envelope of one)."""
    envelope = obj(data, "a Caliper envelope")
    events = envelope.get("data") if "data" in envelope else [envelope]
    if not isinstance(events, list) or not events:
        raise InvalidPayload("data must be a non-empty list of Caliper events")
    if len(events) > MAX_EVENTS_PER_DELIVERY:
        raise InvalidPayload(f"at most {MAX_EVENTS_PER_DELIVERY} events per envelope")
    return parse_each(events, lambda e: _one(obj(e, "a Caliper event"), conn, canvas))


def _one(event: Mapping[str, Any], conn: ConnectionInfo, canvas: bool) -> ActivityEvent:
    event_id = text(event.get("id"))
    kind, action = text(event.get("type")), text(event.get("action"))
    if event_id is None or kind is None or action is None:
        raise InvalidPayload("a Caliper event needs id, type and action")
    user = _learner(event)
    if canvas and user and user.startswith(CANVAS_USER):
        user = user.removeprefix(CANVAS_USER)  # the global id, as in Canvas raw events
    course = _id(event.get("group"))
    if canvas and course and course.startswith(CANVAS_COURSE):
        course = course.removeprefix(CANVAS_COURSE)
    target = event.get("object")
    return build(
        conn,
        key=event_id,
        type=TYPES.get((kind, action)) or event_type("caliper", kind, action),
        who=actor(conn, user),
        at=iso_time(event.get("eventTime"), "eventTime"),
        object_id=_id(target),
        object_type=text(target.get("type")) if isinstance(target, Mapping) else None,
        course=course,
        result=Result(score=_score(event)),
        extensions={"caliper_type": f"{kind}/{action}"[:200]},
    )
