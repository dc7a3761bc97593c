"""Moodle events as the ``local_webhooks`` plugin posts them: ``$event->get_data()`` plus
``host``, ``token`` and ``extra``. The token in the body is the only authentication; there is
no event id, so the key is (host, eventname, objectid, contextinstanceid, user, timecreated).
The learner is ``relateduserid`` when set (a teacher completing for a student), else ``userid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.events import ActivityEvent
from webhooks.connections import ConnectionInfo
from webhooks.delivery import actor, build, event_type, obj, stable_key, text, unix_time
from webhooks.errors import BadSignature, InvalidPayload
from webhooks.signatures import token_matches

TYPES = {
    "\\core\\event\\course_module_completion_updated": "lesson.completed",
    "\\mod_quiz\\event\\attempt_submitted": "quiz.submitted",
    "\\core\\event\\user_graded": "assignment.graded",
    "\\mod_assign\\event\\assessable_submitted": "assignment.submitted",
    "\\core\\event\\course_completed": "course.completed",
    "\\core\\event\\user_loggedin": "session.started",
}


def check_token(data: Any, conn: ConnectionInfo) -> Mapping[str, Any]:
    payload = obj(data, "a Moodle event")
    token = payload.get("token")
    if not isinstance(token, str) or not token or not token_matches(conn.secrets, token):
        raise BadSignature("the token in the body does not match this connection")
    return payload


def from_moodle_payload(data: Any, conn: ConnectionInfo) -> list[ActivityEvent]:
    payload = obj(data, "a Moodle event")
    name = text(payload.get("eventname"))
    if name is None:
        raise InvalidPayload("eventname is required")
    user = text(payload.get("relateduserid")) or text(payload.get("userid"))
    if user is None or user in ("0", "-1"):
        raise InvalidPayload("the event names no user (userid / relateduserid)")
    created = payload.get("timecreated")
    mapped = TYPES.get(name)
    if mapped is None:
        short = name.rsplit("\\", 1)[-1]
        mapped = event_type("moodle", text(payload.get("component")) or "core", short)
    other = payload.get("other")
    # completionstate 0 means "marked incomplete": not a completion.
    cleared = isinstance(other, Mapping) and text(other.get("completionstate")) == "0"
    if mapped == "lesson.completed" and cleared:
        mapped = "moodle.completion_cleared"
    key = stable_key(
        text(payload.get("host")),
        name,
        text(payload.get("objectid")),
        text(payload.get("contextinstanceid")),
        user,
        text(created),
    )
    return [
        build(
            conn,
            key=key,
            type=mapped,
            who=actor(conn, user),
            at=unix_time(created, "timecreated"),
            object_id=text(payload.get("objectid")) or text(payload.get("contextinstanceid")),
            object_type=text(payload.get("objecttable")) or text(payload.get("target")),
            course=text(payload.get("courseid")),
            extensions={"moodle_event": name[:200]},
        )
    ]
