"""HubSpot Webhooks API batches: a JSON array of at most 100 events.

``eventId`` is unique only with the portal and subscription, and ``attemptNumber`` grows on each
retry, so the key is (portalId, subscriptionId, eventId, occurredAt) without the attempt. Times
are epoch milliseconds. The docs call the type ``eventType``; deliveries say ``subscriptionType``.

A deal moving to a won stage is ``deal.won`` credited to the deal's owner. HubSpot does not send
the owner with the stage change, so owners are learnt from ``hubspot_owner_id`` property-change
events (subscribe to both) and kept in ``webhook_crm_owners``; a won deal whose owner is not yet
known is stored as ``hubspot.deal_won_unassigned`` (no XP) rather than credited to someone wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.events import ActivityEvent
from webhooks.connections import ConnectionInfo
from webhooks.delivery import (
    MAX_EVENTS_PER_DELIVERY,
    Events,
    actor,
    build,
    event_type,
    obj,
    parse_each,
    stable_key,
    text,
    unix_time,
)
from webhooks.errors import InvalidPayload

WON_STAGES = ("closedwon",)
OWNER_PROPERTY = "hubspot_owner_id"


def _items(data: Any) -> list[Any]:
    if not isinstance(data, list) or not data:
        raise InvalidPayload("a HubSpot delivery is a non-empty JSON array of events")
    if len(data) > MAX_EVENTS_PER_DELIVERY:
        raise InvalidPayload(f"at most {MAX_EVENTS_PER_DELIVERY} events per delivery")
    return data


def _kind(item: Mapping[str, Any]) -> str:
    kind = text(item.get("subscriptionType")) or text(item.get("eventType"))
    if kind is None:
        raise InvalidPayload("subscriptionType (or eventType) is required")
    return kind


def _is(item: Any, kind: str, prop: str) -> bool:
    """A readable property change of ``kind`` on ``prop`` (unreadable items are never one:
    ``from_hubspot_payload`` rejects them on its own)."""
    return (
        isinstance(item, Mapping)
        and (text(item.get("subscriptionType")) or text(item.get("eventType"))) == kind
        and item.get("propertyName") == prop
    )


def _won(item: Any, conn: ConnectionInfo) -> bool:
    stages = conn.config.get("won_stages") or WON_STAGES
    return _is(item, "deal.propertyChange", "dealstage") and (
        text(item.get("propertyValue")) in stages
    )


def owner_changes(data: Any) -> dict[str, tuple[str, datetime]]:
    """deal id -> (owner id, when) from the owner property changes in this batch."""
    out: dict[str, tuple[str, datetime]] = {}
    for item in _items(data):
        if not _is(item, "deal.propertyChange", OWNER_PROPERTY):
            continue
        deal, owner = text(item.get("objectId")), text(item.get("propertyValue"))
        try:
            when = unix_time(item.get("occurredAt"), "occurredAt", millis=True)
        except InvalidPayload:
            continue
        if deal and owner and (deal not in out or out[deal][1] <= when):
            out[deal] = (owner[:64], when)
    return out


def won_deals(data: Any, conn: ConnectionInfo) -> set[str]:
    return {text(i.get("objectId")) or "" for i in _items(data) if _won(i, conn)} - {""}


def from_hubspot_payload(data: Any, conn: ConnectionInfo, owners: Mapping[str, str]) -> Events:
    """The batch as canonical events; ``owners`` maps deal ids to owner ids already known."""
    return parse_each(_items(data), lambda item: _one(obj(item, "a HubSpot event"), conn, owners))


def _one(item: Mapping[str, Any], conn: ConnectionInfo, owners: Mapping[str, str]) -> ActivityEvent:
    kind = _kind(item)
    portal, sub, event_id = (text(item.get(k)) for k in ("portalId", "subscriptionId", "eventId"))
    object_id = text(item.get("objectId"))
    if event_id is None or object_id is None:
        raise InvalidPayload("eventId and objectId are required")
    occurred = item.get("occurredAt")
    key = stable_key(portal, sub, event_id, text(occurred))
    record, _, change = kind.partition(".")
    if _won(item, conn):
        owner = owners.get(object_id)
        canonical = "deal.won" if owner else "hubspot.deal_won_unassigned"
        who = actor(conn, f"owner:{owner}" if owner else f"deal:{object_id}")
    else:
        canonical = event_type("hubspot", record or "unknown", change or "event")
        who = actor(conn, f"{record}:{object_id}")
    extensions: dict[str, Any] = {"hubspot_type": kind[:100]}
    if text(item.get("propertyName")):
        extensions["property"] = str(item.get("propertyName"))[:100]
        extensions["value"] = str(item.get("propertyValue"))[:200]
    return build(
        conn,
        key=key,
        type=canonical,
        who=who,
        at=unix_time(occurred, "occurredAt", millis=True),
        object_id=object_id,
        object_type=record or None,
        extensions=extensions,
    )
