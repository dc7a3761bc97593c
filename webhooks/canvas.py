"""Canvas Live Events in the raw format (``{"metadata": ..., "body": ...}``).

The traps (fixtures README): ``metadata.user_id`` is whoever clicked, possibly the grading
teacher, so the learner comes from the body; ``course_completed``/``course_progress`` carry
*local* ids that are turned into global shard ids; and there is no event id, so the key is built
from (root account, event name, event time, object id, attempt/updated_at).
"""

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
    stable_key,
    text,
)
from webhooks.errors import InvalidPayload

SHARD_FACTOR = 10**13  # Canvas global id = shard id * 10^13 + local id

TYPES = {
    "submission_created": "assignment.submitted",
    "quiz_submitted": "quiz.submitted",
    "grade_change": "assignment.graded",
    "course_completed": "course.completed",
    "logged_in": "session.started",
}


def global_id(local: str | None, metadata: Mapping[str, Any]) -> str | None:
    """A local Canvas id made global with the root account's shard; global ids pass through."""
    if local is None or not local.isdigit() or int(local) >= SHARD_FACTOR:
        return local
    root = text(metadata.get("root_account_id"))
    if root is None or not root.isdigit() or int(root) < SHARD_FACTOR:
        return local
    return str(int(root) // SHARD_FACTOR * SHARD_FACTOR + int(local))


def _learner(name: str, meta: Mapping[str, Any], body: Mapping[str, Any]) -> tuple[Any, Any]:
    """(user id, email) of the person the event is about."""
    if name == "grade_change":
        return text(body.get("student_id")) or text(body.get("user_id")), None
    if name in ("course_completed", "course_progress"):
        user = body.get("user") if isinstance(body.get("user"), Mapping) else {}
        return global_id(text(user.get("id")), meta), text(user.get("email"))
    if name.startswith(("submission_", "enrollment_")):
        return text(body.get("user_id")) or text(meta.get("user_id")), None
    return text(meta.get("user_id")) or text(body.get("user_id")), None


def _object(name: str, body: Mapping[str, Any], meta: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """(object id, object type, version qualifier) for the key and the canonical object."""
    if name.startswith("submission_") or name in ("grade_change", "quiz_submitted"):
        qualifier = text(body.get("attempt")) or text(body.get("updated_at"))
        return text(body.get("submission_id")), "submission", qualifier
    if name in ("course_completed", "course_progress"):
        course = body.get("course") if isinstance(body.get("course"), Mapping) else {}
        progress = body.get("progress") if isinstance(body.get("progress"), Mapping) else {}
        done = text(progress.get("requirement_completed_count"))
        return global_id(text(course.get("id")), meta), "course", done
    if name.startswith("enrollment_"):
        return text(body.get("enrollment_id")), "enrollment", text(body.get("updated_at"))
    if name == "asset_accessed":
        return text(body.get("asset_id")), text(body.get("asset_type")), None
    if name == "logged_in":
        return text(meta.get("session_id")), "session", None
    return None, None, None


def _course(name: str, meta: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    if name in ("course_completed", "course_progress"):
        course = body.get("course") if isinstance(body.get("course"), Mapping) else {}
        return global_id(text(course.get("id")), meta)
    if meta.get("context_type") == "Course":
        return text(meta.get("context_id"))
    return text(body.get("course_id"))


def from_canvas_payload(data: Any, conn: ConnectionInfo) -> Events:
    """One Canvas raw event (or a list of them) as canonical events."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidPayload("the list of Canvas events is empty")
    if len(items) > MAX_EVENTS_PER_DELIVERY:
        raise InvalidPayload(f"at most {MAX_EVENTS_PER_DELIVERY} events per delivery")
    return parse_each(items, lambda item: _one(obj(item, "a Canvas event"), conn))


def _one(item: Mapping[str, Any], conn: ConnectionInfo) -> ActivityEvent:
    meta = obj(item.get("metadata"), "metadata")
    body = item.get("body") if isinstance(item.get("body"), Mapping) else {}
    name = text(meta.get("event_name"))
    if name is None:
        raise InvalidPayload("metadata.event_name is required")
    at = iso_time(meta.get("event_time"), "metadata.event_time")
    if name == "submission_created" and body.get("submitted_at"):
        at = iso_time(body.get("submitted_at"), "body.submitted_at")
    user_id, email = _learner(name, meta, body)
    if email is None and text(meta.get("user_login")) and user_id == text(meta.get("user_id")):
        email = text(meta.get("user_login"))  # a login is often, not always, an email
    object_id, object_type, qualifier = _object(name, body, meta)
    score = None
    if name == "grade_change":
        score = fraction(body.get("score"), body.get("points_possible"))
    key = stable_key(
        text(meta.get("root_account_uuid")) or text(meta.get("root_account_id")),
        name,
        text(meta.get("event_time")),
        object_id or user_id,
        qualifier,
    )
    return build(
        conn,
        key=key,
        type=TYPES.get(name) or event_type("canvas", name),
        who=actor(conn, user_id, email=email),
        at=at,
        object_id=object_id,
        object_type=object_type,
        course=_course(name, meta, body),
        result=Result(score=score),
        extensions={"canvas_event": name[:100]},
    )
