"""One HTTP delivery as the receivers see it, plus the helpers every parser shares.

Receivers take a ``Delivery`` (method, URL, lower-cased headers, raw body, the time it arrived)
rather than a Flask request, so they can be tested and fuzzed without a web server.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from engine.events import EVENT_TYPE_PATTERN, MAX_ID_LENGTH, ActivityEvent, Actor, Result
from engine.events import parse_timestamp as _iso
from webhooks.connections import ConnectionInfo
from webhooks.errors import InvalidPayload

_T = TypeVar("_T")
MAX_EVENTS_PER_DELIVERY = 100  # HubSpot sends < 100, Salesforce at most 100 notifications


@dataclass(frozen=True)
class Delivery:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    query: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload("the body is not UTF-8") from exc


class Events(list[ActivityEvent]):
    """The events of one delivery, plus the items of it that could not be read.

    A batch (HubSpot's array, a Caliper envelope, xAPI statements, Salesforce notifications)
    holding one bad item still stores the good ones: HubSpot never retries a 4xx and Salesforce
    gives up after a day, so refusing the whole delivery would lose valid events. ``rejected``
    says which items were skipped and why (answered and logged); a delivery with no readable
    item at all is still a 400.
    """

    rejected: list[dict[str, Any]]

    def __init__(self, events: list[ActivityEvent], rejected: list[dict[str, Any]]) -> None:
        super().__init__(events)
        self.rejected = rejected


def parse_each(items: list[_T], parse: Callable[[_T], ActivityEvent]) -> Events:
    """``parse`` every item; skip (and record) the unreadable ones unless none is readable."""
    events: list[ActivityEvent] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            events.append(parse(item))
        except InvalidPayload as exc:
            rejected.append({"index": index, "message": exc.message})
    if rejected and not events:
        first = rejected[0]["message"]
        if len(items) == 1:
            raise InvalidPayload(first)
        raise InvalidPayload(f"no item of the batch is readable; item 0: {first}", details=rejected)
    return Events(events, rejected)


def load_json(delivery: Delivery) -> Any:
    if not delivery.body.strip():
        raise InvalidPayload("the body is empty")
    text = delivery.text
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload(f"the body is not valid JSON: {str(exc)[:120]}") from None
    if "\\u" in text:  # only escapes can smuggle in what PostgreSQL cannot store
        check_storable(data)
    return data


def check_storable(data: Any) -> None:
    """Refuse NUL characters and lone surrogates: JSON allows them, PostgreSQL text does not."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidPayload("the body holds a lone surrogate escape") from None
            if "\x00" in item:
                raise InvalidPayload("the body holds a NUL character")


def obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidPayload(f"{what} must be a JSON object")
    return value


def text(value: Any) -> str | None:
    """A scalar id as text ("2" and 2 are the same id); None for missing or empty."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        out = str(value).strip()
        return out or None
    return None


def iso_time(value: Any, what: str) -> datetime:
    try:
        return _iso(value)
    except ValueError as exc:
        raise InvalidPayload(f"{what} {exc}") from None


def unix_time(value: Any, what: str, *, millis: bool = False) -> datetime:
    raw = text(value)
    if raw is None or not raw.isdigit():
        raise InvalidPayload(f"{what} must be a unix time")
    seconds = int(raw) / 1000 if millis else int(raw)
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidPayload(f"{what} is out of range") from None


def event_type(prefix: str, *parts: str) -> str:
    """An unknown source type made canonical-looking: ``canvas.asset_accessed``."""
    words = []
    for part in parts:
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", part).lower()
        snake = re.sub(r"[^a-z0-9]+", "_", snake).strip("_")
        if snake and not snake[0].isalpha():
            snake = "x" + snake
        words.append(snake[:40] or "unknown")
    out = ".".join([prefix, *words])
    assert EVENT_TYPE_PATTERN.match(out), out
    return out


def stable_key(*parts: Any) -> str:
    """A readable idempotency key from its parts, hashed when it would be too long."""
    key = "/".join("" if p is None else str(p) for p in parts)
    if len(key) <= MAX_ID_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def fraction(given: Any, maximum: Any) -> float | None:
    """A score as 0..1 from (given, max); clamped, since LMSs allow extra credit."""
    if isinstance(given, bool) or not isinstance(given, int | float):
        return None
    if isinstance(maximum, bool) or not isinstance(maximum, int | float) or maximum <= 0:
        return None
    value = float(given) / float(maximum)
    if value != value:  # NaN
        return None
    return min(1.0, max(0.0, value))


def actor(
    conn: ConnectionInfo, user_id: str | None, *, email: str | None = None, name: str | None = None
) -> Actor:
    """The learner, namespaced per connection; by email when the connection maps by email."""
    email = email.strip().lower() if email and "@" in email and len(email) <= 320 else None
    name = name[:200] if name else None
    if conn.identity == "email" and email:
        return Actor(email=email, name=name)
    if user_id is None:
        if email:
            return Actor(email=email, name=name)
        raise InvalidPayload("the event names no user")
    ident = f"{conn.namespace}:{user_id}"
    if len(ident) > MAX_ID_LENGTH:
        ident = f"{conn.namespace}:sha256:{hashlib.sha256(user_id.encode()).hexdigest()}"
    return Actor(id=ident, email=email, name=name)


def build(
    conn: ConnectionInfo,
    *,
    key: str,
    type: str,
    who: Actor,
    at: datetime,
    object_id: str | None = None,
    object_type: str | None = None,
    course: str | None = None,
    result: Result | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> ActivityEvent:
    if at.tzinfo is None:
        raise InvalidPayload("the event time has no time zone")
    return ActivityEvent(
        id=key,
        source=conn.source,
        type=type,
        actor=who,
        occurred_at=at,
        object_id=object_id[:512] if object_id else None,
        object_type=object_type[:100] if object_type else None,
        course=course[:255] if course else None,
        result=result or Result(),
        extensions=dict(extensions or {}),
    )
