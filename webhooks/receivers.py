"""The receiver of each connection kind: authenticate the raw delivery, then parse it.

Every receiver takes ``(delivery, connection, open_session)`` and returns the canonical events;
it raises ``BadSignature`` before looking at the content wherever the scheme allows (HMACs,
Bearer, Basic), and ``InvalidPayload`` for anything it cannot read. ``open_session()`` returns the
session of the transaction the events will be stored in; a receiver calls it only for lookups
and writes that must commit with the store (HubSpot deal owners). When no receiver asked for it,
the view stores with one autocommitted INSERT: one database round trip per delivery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.events import ActivityEvent
from webhooks import auth, caliper, canvas, hubspot, moodle, salesforce, standard, xapi
from webhooks.connections import ConnectionInfo
from webhooks.delivery import Delivery, check_storable, load_json
from webhooks.errors import BadSignature, InvalidPayload
from webhooks.models import CrmRecordOwner
from webhooks.signatures import verify_hubspot, verify_standard

OpenSession = Callable[[], Session]
JSON = ("application/json",)
JWT = ("application/jwt", "text/plain")


@dataclass(frozen=True)
class Receiver:
    content_types: tuple[str, ...]
    receive: Callable[[Delivery, ConnectionInfo, OpenSession], list[ActivityEvent]]


def _jwt_or_json(delivery: Delivery, conn: ConnectionInfo) -> Any:
    """Canvas: a signed JWT verified against the JWKS when configured, else Bearer + JSON."""
    jwks_url = conn.config.get("jwks_url")
    if jwks_url:
        token = delivery.text.strip()
        if token.count(".") != 2:
            raise BadSignature("this connection takes signed JWT events only")
        claims = auth.verify_jwt(token, str(jwks_url))
        check_storable(claims)
        return claims
    if delivery.headers.get("content-type", "").startswith(JWT):
        raise BadSignature("a signed JWT arrived but the connection has no --jwks-url")
    auth.require_bearer(delivery, conn, allow_query=True)
    return load_json(delivery)


def _canvas(delivery: Delivery, conn: ConnectionInfo, _s: OpenSession) -> list[ActivityEvent]:
    return canvas.from_canvas_payload(_jwt_or_json(delivery, conn), conn)


def _canvas_caliper(
    delivery: Delivery, conn: ConnectionInfo, _s: OpenSession
) -> list[ActivityEvent]:
    return caliper.from_caliper_payload(_jwt_or_json(delivery, conn), conn, canvas=True)


def _caliper(delivery: Delivery, conn: ConnectionInfo, _s: OpenSession) -> list[ActivityEvent]:
    auth.require_bearer(delivery, conn)
    return caliper.from_caliper_payload(load_json(delivery), conn)


def _xapi(delivery: Delivery, conn: ConnectionInfo, _s: OpenSession) -> list[ActivityEvent]:
    auth.require_basic(delivery, conn)
    version = delivery.headers.get("x-experience-api-version", "")
    if not version.startswith("1.0"):
        raise InvalidPayload("X-Experience-API-Version 1.0.x is required")
    return xapi.from_xapi_payload(load_json(delivery), conn, delivery.received_at)


def _moodle(delivery: Delivery, conn: ConnectionInfo, _s: OpenSession) -> list[ActivityEvent]:
    data = load_json(delivery)  # the token is inside the body: it must be read first
    moodle.check_token(data, conn)
    return moodle.from_moodle_payload(data, conn)


def _salesforce(delivery: Delivery, conn: ConnectionInfo, _s: OpenSession) -> list[ActivityEvent]:
    return salesforce.from_salesforce_payload(delivery.body, conn, delivery.received_at)


def _standard(delivery: Delivery, conn: ConnectionInfo, _s: OpenSession) -> list[ActivityEvent]:
    msg_id = verify_standard(
        conn.secrets, headers=delivery.headers, body=delivery.body, now=_now(delivery)
    )
    return standard.from_standard_payload(load_json(delivery), conn, msg_id)


def _hubspot(
    delivery: Delivery, conn: ConnectionInfo, open_session: OpenSession
) -> list[ActivityEvent]:
    verify_hubspot(
        conn.secrets,
        method=delivery.method,
        url=delivery.url,
        body=delivery.body,
        headers=delivery.headers,
        now=_now(delivery),
    )
    data = load_json(delivery)
    changes = hubspot.owner_changes(data)
    owners = {deal: owner for deal, (owner, _) in changes.items()}
    missing = hubspot.won_deals(data, conn) - set(owners)
    if not changes and not missing:
        return hubspot.from_hubspot_payload(data, conn, owners)  # nothing to look up or keep
    session = open_session()
    if changes:
        rows = [
            {"tenant_id": conn.tenant_id, "connection_id": conn.id, "record_id": deal,
             "owner_id": owner, "changed_at": when}
            for deal, (owner, when) in changes.items()
        ]  # fmt: skip
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(CrmRecordOwner)
        stmt = stmt.on_conflict_do_update(
            index_elements=["connection_id", "record_id"],
            set_={"owner_id": stmt.excluded.owner_id, "changed_at": stmt.excluded.changed_at},
            where=CrmRecordOwner.changed_at <= stmt.excluded.changed_at,
        )
        session.execute(stmt, rows)
    if missing:
        known = session.execute(
            select(CrmRecordOwner.record_id, CrmRecordOwner.owner_id).where(
                CrmRecordOwner.connection_id == conn.id, CrmRecordOwner.record_id.in_(missing)
            )
        )
        owners.update({record: owner for record, owner in known})
    return hubspot.from_hubspot_payload(data, conn, owners)


def _now(delivery: Delivery) -> float:
    return delivery.received_at.timestamp() if delivery.received_at else time.time()


RECEIVERS: dict[str, Receiver] = {
    "moodle": Receiver(JSON, _moodle),
    "canvas": Receiver(JSON + JWT, _canvas),
    "canvas-caliper": Receiver(JSON + JWT, _canvas_caliper),
    "caliper": Receiver(JSON, _caliper),
    "xapi": Receiver(JSON, _xapi),
    "hubspot": Receiver(JSON, _hubspot),
    "salesforce": Receiver(("text/xml", "application/soap+xml"), _salesforce),
    "standard": Receiver(JSON, _standard),
}
