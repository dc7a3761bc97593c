"""The canonical activity event: what every adapter turns the outside world into.

``parse_event`` validates a plain JSON-like dict and either returns an ``ActivityEvent`` or raises
``InvalidEvent`` listing every problem with the field it concerns, so an API can answer 422 naming
the field. The format is documented in docs/events.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
SOURCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
KNOWN_TYPES = frozenset(
    {
        "lesson.completed",
        "quiz.submitted",
        "assignment.graded",
        "course.completed",
        "session.started",
        "deal.won",
    }
)
MAX_ID_LENGTH = 255
# occurred_at must fall in these years (see parse_event).
MIN_YEAR = 1970
MAX_YEAR = 2999
MAX_TEXT_LENGTH = 512


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``field`` is a dotted path such as ``result.score``."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InvalidEvent(ValueError):
    """The event cannot be accepted; ``errors`` names each bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Actor:
    """Who did it, as the source knows them: an external id and/or an email."""

    id: str | None = None
    email: str | None = None
    name: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class Result:
    """How it went: a score in 0..1, passed or not, duration in seconds."""

    score: float | None = None
    passed: bool | None = None
    duration: float | None = None


@dataclass(frozen=True)
class ActivityEvent:
    """A learner activity, whatever system it came from. ``id`` is unique per ``source``."""

    id: str
    source: str
    type: str
    actor: Actor
    occurred_at: datetime
    object_id: str | None = None
    object_type: str | None = None
    course: str | None = None
    result: Result = field(default_factory=Result)
    extensions: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None  # the LMS group the activity happened in (``context.group``)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form stored in the inbox and carried by jobs."""
        out: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "actor": _compact(
                {
                    "id": self.actor.id,
                    "email": self.actor.email,
                    "name": self.actor.name,
                    "timezone": self.actor.timezone,
                }
            ),
            "occurred_at": self.occurred_at.isoformat(),
        }
        if self.object_id is not None:
            out["object"] = _compact({"id": self.object_id, "type": self.object_type})
        context = _compact({"course": self.course, "group": self.group})
        if context:
            out["context"] = context
        result = _compact(
            {
                "score": self.result.score,
                "passed": self.result.passed,
                "duration": self.result.duration,
            }
        )
        if result:
            out["result"] = result
        if self.extensions:
            out["extensions"] = dict(self.extensions)
        return out


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class _Checker:
    """Collects field errors so one response can name all of them."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def text(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        max_length: int = MAX_TEXT_LENGTH,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(path, "must be a string")
            return None
        value = str(value).strip()
        if not value:
            self.fail(path, "must not be empty")
            return None
        if len(value) > max_length:
            self.fail(path, f"must be at most {max_length} characters")
            return None
        if pattern is not None and not pattern.match(value):
            self.fail(path, hint or f"must match {pattern.pattern}")
            return None
        return value

    def mapping(self, obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, "must be an object")
            return {}
        return value

    def number(
        self, obj: Mapping[str, Any], key: str, path: str, *, low: float, high: float | None
    ) -> float | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, "must be a number")
            return None
        try:
            value = float(value)  # a huge JSON integer overflows here
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            self.fail(path, "must be a number")
            return None
        if value < low or (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            self.fail(path, f"must be {bound}")
            return None
        return value


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 timestamp that states its offset; naive times are ambiguous, so refused."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 timestamp") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must include a time zone offset (for example Z or +02:00)")
    return parsed


NO_RESULT = Result()
NO_ACTOR = Actor()


def from_stored(data: Mapping[str, Any]) -> ActivityEvent:
    """The event whose canonical form (``ActivityEvent.to_dict``) was stored in the inbox.

    That form was produced by ``parse_event`` when the event was accepted, so it is not
    validated again: a replay of a million stored events spends its time in the rules, not
    in checking each field a second time. Raises KeyError, TypeError or ValueError on data
    that is not such a form (the caller falls back to ``parse_event``)."""
    actor = data.get("actor")
    obj = data.get("object")
    context = data.get("context")
    result = data.get("result")
    occurred_at = datetime.fromisoformat(data["occurred_at"])
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at has no offset")
    score = duration = None
    if result:
        score, duration = result.get("score"), result.get("duration")
        result = Result(
            None if score is None else float(score),
            result.get("passed"),
            None if duration is None else float(duration),
        )
    return ActivityEvent(
        data["id"],
        data["source"],
        data["type"],
        Actor(actor.get("id"), actor.get("email"), actor.get("name"), actor.get("timezone"))
        if actor
        else NO_ACTOR,
        occurred_at,
        obj.get("id") if obj else None,
        obj.get("type") if obj else None,
        context.get("course") if context else None,
        result or NO_RESULT,
        data.get("extensions") or {},
        context.get("group") if context else None,
    )


def read_stored(data: Any) -> ActivityEvent:
    """An inbox row's event: ``from_stored`` when the row holds the canonical form (every row
    Questline wrote does), else validated in full. Raises ``InvalidEvent`` for a row that is
    not a valid event, so a caller can give up on it for good."""
    try:
        event = from_stored(data)
        if event.actor.id is not None or event.actor.email is not None:
            return event
    except (KeyError, TypeError, ValueError, AttributeError):
        pass  # not the canonical form: validate it below
    return parse_event(data)


def _valid_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, e.g. 'Etc'
        return False
    return True


def parse_event(data: Any, *, default_source: str = "api") -> ActivityEvent:
    """Validate one event in the documented JSON shape; raise ``InvalidEvent`` naming fields."""
    check = _Checker()
    if not isinstance(data, Mapping):
        raise InvalidEvent([FieldError("$", "an event must be a JSON object")])

    event_id = check.text(data, "id", "id", required=True, max_length=MAX_ID_LENGTH)
    source = data.get("source", default_source)
    if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
        check.fail("source", "must be 1-64 lowercase letters, digits or . _ : -")
    event_type = check.text(
        data,
        "type",
        "type",
        required=True,
        max_length=100,
        pattern=EVENT_TYPE_PATTERN,
        hint="must be a dotted lowercase verb such as lesson.completed",
    )

    actor_data = data.get("actor")
    actor = Actor()
    if actor_data is None:
        check.fail("actor", "is required")
    elif not isinstance(actor_data, Mapping):
        check.fail("actor", "must be an object")
    else:
        actor_id = check.text(actor_data, "id", "actor.id", max_length=MAX_ID_LENGTH)
        email = check.text(actor_data, "email", "actor.email", max_length=320)
        if email is not None and ("@" not in email or email.startswith("@")):
            check.fail("actor.email", "must be an email address")
            email = None
        if (
            actor_id is None
            and email is None
            and not any(e.field in {"actor.id", "actor.email"} for e in check.errors)
        ):
            check.fail("actor", "needs an id or an email")
        tz = check.text(actor_data, "timezone", "actor.timezone", max_length=64)
        if tz is not None and not _valid_zone(tz):
            check.fail("actor.timezone", "must be an IANA time zone name such as Europe/Paris")
            tz = None
        actor = Actor(
            id=actor_id,
            email=email.lower() if email else None,
            name=check.text(actor_data, "name", "actor.name", max_length=200),
            timezone=tz,
        )

    obj = check.mapping(data, "object", "object")
    object_id = check.text(obj, "id", "object.id", max_length=MAX_TEXT_LENGTH)
    object_type = check.text(obj, "type", "object.type", max_length=100)
    if obj and object_id is None and not any(e.field == "object.id" for e in check.errors):
        check.fail("object.id", "is required when object is given")

    context = check.mapping(data, "context", "context")
    course = check.text(context, "course", "context.course", max_length=255)
    group = check.text(context, "group", "context.group", max_length=255)
    if group is not None and any(c.isspace() for c in group):
        check.fail("context.group", "must be a group id without spaces (it names a board)")

    result_data = check.mapping(data, "result", "result")
    passed = result_data.get("passed")
    if passed is not None and not isinstance(passed, bool):
        check.fail("result.passed", "must be true or false")
        passed = None
    result = Result(
        score=check.number(result_data, "score", "result.score", low=0.0, high=1.0),
        passed=passed,
        duration=check.number(result_data, "duration", "result.duration", low=0.0, high=None),
    )

    occurred_at = None
    if "occurred_at" not in data or data["occurred_at"] is None:
        check.fail("occurred_at", "is required")
    else:
        try:
            occurred_at = parse_timestamp(data["occurred_at"])
        except ValueError as exc:
            check.fail("occurred_at", str(exc))
        else:
            # Year 1 or 9999 parse, but moving them into a far zone overflows `datetime`, and
            # no learning activity happens there: refuse them here with a clear error.
            if not MIN_YEAR <= occurred_at.year <= MAX_YEAR:
                check.fail("occurred_at", f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
                occurred_at = None

    extensions = check.mapping(data, "extensions", "extensions")

    if check.errors:
        raise InvalidEvent(check.errors)
    assert event_id is not None and event_type is not None and occurred_at is not None
    return ActivityEvent(
        id=event_id,
        source=str(source),
        type=event_type,
        actor=actor,
        occurred_at=occurred_at,
        object_id=object_id,
        object_type=object_type,
        course=course,
        result=result,
        extensions=dict(extensions),
        group=group,
    )
