"""xAPI 1.0.3 statements as an LRS statement endpoint takes them (one statement or a list).

The statement ``id`` is the idempotency key (a statement without one gets a key hashed from its
content, so a resend of the same statement is still a duplicate). ``timestamp`` is when it
happened; without one the LRS sets it to the time it was stored, i.e. when we received it. The
actor is identified by exactly one IFI: mbox, mbox_sha1sum, openid or account.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.events import Result
from webhooks.connections import ConnectionInfo
from webhooks.delivery import (
    MAX_EVENTS_PER_DELIVERY,
    Events,
    actor,
    build,
    event_type,
    iso_time,
    obj,
    parse_each,
    text,
)
from webhooks.errors import InvalidPayload

ADL = "http://adlnet.gov/expapi/verbs/"
_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def duration_seconds(value: Any) -> float | None:
    """ISO 8601 duration (days and time parts, as xAPI uses them) in seconds."""
    match = _DURATION.match(value) if isinstance(value, str) and len(value) < 64 else None
    if match is None or value in ("P", "PT"):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _ifi(agent: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(identifier, email) of an Agent or identified Group."""
    mbox = text(agent.get("mbox"))
    if mbox:
        email = mbox.removeprefix("mailto:")
        return f"mbox:{email.lower()}", email
    if text(agent.get("mbox_sha1sum")):
        return f"mbox_sha1sum:{text(agent.get('mbox_sha1sum'))}", None
    if text(agent.get("openid")):
        return f"openid:{text(agent.get('openid'))}", None
    account = agent.get("account")
    if isinstance(account, Mapping) and text(account.get("name")):
        return f"account:{text(account.get('homePage'))}|{text(account.get('name'))}", None
    return None, None


def _type(verb: str, target: Mapping[str, Any]) -> str:
    definition = target.get("definition") if isinstance(target.get("definition"), Mapping) else {}
    activity = str(definition.get("type") or "")
    if verb == ADL + "completed":
        return "course.completed" if activity.endswith("/course") else "lesson.completed"
    if verb in (ADL + "passed", ADL + "failed", ADL + "scored"):
        return "quiz.submitted"
    last = verb.rstrip("/").rsplit("/", 1)[-1] or "unknown"
    return event_type("xapi", last)


def _result(data: Any) -> Result:
    if not isinstance(data, Mapping):
        return Result()
    score = data.get("score") if isinstance(data.get("score"), Mapping) else {}
    scaled = score.get("scaled")
    value: float | None = None
    if isinstance(scaled, int | float) and not isinstance(scaled, bool) and -1 <= scaled <= 1:
        value = max(0.0, float(scaled))
    success = data.get("success")
    return Result(
        score=value,
        passed=success if isinstance(success, bool) else None,
        duration=duration_seconds(data.get("duration")),
    )


def from_xapi_payload(data: Any, conn: ConnectionInfo, received_at: datetime) -> Events:
    statements = data if isinstance(data, list) else [data]
    if not statements:
        raise InvalidPayload("the statement list is empty")
    if len(statements) > MAX_EVENTS_PER_DELIVERY:
        raise InvalidPayload(f"at most {MAX_EVENTS_PER_DELIVERY} statements per request")
    return parse_each(statements, lambda s: _one(obj(s, "a statement"), conn, received_at))


def _one(statement: Mapping[str, Any], conn: ConnectionInfo, received_at: datetime) -> Any:
    agent = obj(statement.get("actor"), "actor")
    verb = obj(statement.get("verb"), "verb")
    target = obj(statement.get("object"), "object")
    verb_id = text(verb.get("id"))
    if verb_id is None:
        raise InvalidPayload("verb.id is required")
    ident, email = _ifi(agent)
    if ident is None:
        raise InvalidPayload("the actor has no identifier (mbox, mbox_sha1sum, openid, account)")
    key = text(statement.get("id"))
    if key is None:
        canonical = json.dumps(statement, sort_keys=True, separators=(",", ":"), default=str)
        key = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    stamp = statement.get("timestamp")
    at = iso_time(stamp, "timestamp") if stamp is not None else received_at
    context = statement.get("context") if isinstance(statement.get("context"), Mapping) else {}
    activities = context.get("contextActivities")
    course = None
    if isinstance(activities, Mapping) and isinstance(activities.get("parent"), list):
        parents = [p for p in activities["parent"] if isinstance(p, Mapping)]
        course = text(parents[0].get("id")) if parents else None
    name = text(agent.get("name"))
    return build(
        conn,
        key=key,
        type=_type(verb_id, target),
        who=actor(conn, ident, email=email, name=name),
        at=at,
        object_id=text(target.get("id")),
        object_type=text(target.get("objectType")) or "Activity",
        course=course,
        result=_result(statement.get("result")),
        extensions={"xapi_verb": verb_id[:300]},
    )
