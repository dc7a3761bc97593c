"""Any source that signs per Standard Webhooks: ``{"type", "timestamp", "data"}`` bodies.

``webhook-id`` is the idempotency key (it stays the same across retries). The person is taken
from ``data.actor`` (``{"id", "email"}``) when present, else ``data.user_id``/``data.email``,
else ``data.id`` (the spec's example: the contact the event is about).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.events import EVENT_TYPE_PATTERN, ActivityEvent, Result
from webhooks.connections import ConnectionInfo
from webhooks.delivery import actor, build, event_type, fraction, iso_time, obj, text
from webhooks.errors import InvalidPayload


def from_standard_payload(data: Any, conn: ConnectionInfo, msg_id: str) -> list[ActivityEvent]:
    payload = obj(data, "a Standard Webhooks payload")
    kind = text(payload.get("type"))
    if kind is None:
        raise InvalidPayload("type is required")
    body = payload.get("data") if isinstance(payload.get("data"), Mapping) else {}
    who = body.get("actor") if isinstance(body.get("actor"), Mapping) else {}
    user = text(who.get("id")) or text(body.get("user_id")) or text(body.get("id"))
    email = text(who.get("email")) or text(body.get("email"))
    canonical = kind.lower() if EVENT_TYPE_PATTERN.match(kind.lower()) else None
    target = body.get("object") if isinstance(body.get("object"), Mapping) else {}
    result = body.get("result") if isinstance(body.get("result"), Mapping) else {}
    return [
        build(
            conn,
            key=msg_id[:255],
            type=canonical or event_type("standard", kind),
            who=actor(conn, user, email=email, name=text(who.get("name"))),
            at=iso_time(payload.get("timestamp"), "timestamp"),
            object_id=text(target.get("id")) or text(body.get("object_id")),
            object_type=text(target.get("type")) or text(body.get("type")),
            course=text(body.get("course")),
            result=Result(score=fraction(result.get("score"), 1)),
            extensions={"standard_type": kind[:100]},
        )
    ]
