"""Salesforce Outbound Messages: a SOAP ``notifications`` request, parsed with defusedxml.

There is no signature: authenticity is the ``OrganizationId`` matching the connection's org (15 or
18 characters, compared on the 15-character form). Salesforce retries until it receives the SOAP
``Ack`` (a bare 200 counts as a failure), so duplicates are normal: ``Notification/Id`` is the key.
An Opportunity that is won (``IsWon`` true or stage "Closed Won") is ``deal.won`` for its
``OwnerId``; other records are ``salesforce.<object>_notified``.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from engine.events import ActivityEvent
from webhooks.connections import ConnectionInfo
from webhooks.delivery import (
    MAX_EVENTS_PER_DELIVERY,
    Events,
    actor,
    build,
    event_type,
    iso_time,
    parse_each,
)
from webhooks.errors import BadSignature, InvalidPayload

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OM = "http://soap.sforce.com/2005/09/outbound"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SF = "urn:sobject.enterprise.soap.sforce.com"

ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP}">'
    f'<soapenv:Body><notificationsResponse xmlns="{OM}"><Ack>true</Ack>'
    "</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


def fault(message: str) -> str:
    """A SOAP 1.1 Client fault carrying ``message`` (escaped)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>soapenv:Client</faultcode><faultstring>{escape(message)}</faultstring>"
        "<detail/></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def _parse(body: bytes) -> Element:
    try:
        return fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise InvalidPayload("XML with a DTD or entities is refused") from None
    except (ParseError, ValueError):
        raise InvalidPayload("the body is not well-formed XML") from None


def _child_text(element: Element, tag: str) -> str | None:
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def org_matches(expected: str, offered: str | None) -> bool:
    """Org ids compare on their case-sensitive 15-character form, in constant time."""
    if not offered or len(offered) not in (15, 18):
        return False
    return hmac.compare_digest(expected[:15].encode(), offered[:15].encode())


def from_salesforce_payload(body: bytes, conn: ConnectionInfo, received_at: datetime) -> Events:
    root = _parse(body)
    notifications = root.find(f"{{{SOAP}}}Body/{{{OM}}}notifications")
    if notifications is None:
        raise InvalidPayload("no soapenv:Body/notifications element")
    if not org_matches(
        str(conn.config.get("org_id", "")), _child_text(notifications, f"{{{OM}}}OrganizationId")
    ):
        raise BadSignature("OrganizationId does not match this connection")
    items = notifications.findall(f"{{{OM}}}Notification")
    if not items:
        raise InvalidPayload("the message holds no Notification")
    if len(items) > MAX_EVENTS_PER_DELIVERY:
        raise InvalidPayload(f"at most {MAX_EVENTS_PER_DELIVERY} notifications per message")
    return parse_each(items, lambda item: _one(item, conn, received_at))


def _one(item: Element, conn: ConnectionInfo, received_at: datetime) -> ActivityEvent:
    key = _child_text(item, f"{{{OM}}}Id")
    record = item.find(f"{{{OM}}}sObject")
    if key is None or record is None:
        raise InvalidPayload("a Notification needs Id and sObject")
    sobject = (record.get(f"{{{XSI}}}type") or "sf:Object").partition(":")[2] or "Object"
    fields: dict[str, Any] = {
        child.tag.removeprefix(f"{{{SF}}}"): (child.text or "").strip() for child in record
    }
    stamp = fields.get("LastModifiedDate") or fields.get("CreatedDate")
    at = iso_time(stamp, f"{sobject}.LastModifiedDate") if stamp else received_at
    record_id = fields.get("Id") or None
    won = sobject == "Opportunity" and (
        fields.get("IsWon") == "true" or fields.get("StageName") == "Closed Won"
    )
    if won:
        owner = fields.get("OwnerId")
        if not owner:
            raise InvalidPayload("a won Opportunity must carry OwnerId (add it to the message)")
        kind, who = "deal.won", actor(conn, f"user:{owner}")
    else:
        kind = event_type("salesforce", f"{sobject}_notified")
        person = sobject in ("Contact", "Lead", "User")
        who_id = record_id if person else fields.get("OwnerId") or record_id
        name = " ".join(x for x in (fields.get("FirstName"), fields.get("LastName")) if x)
        prefix = "user" if sobject == "User" or not person else sobject.lower()
        who = actor(conn, f"{prefix}:{who_id}" if who_id else None, email=fields.get("Email"),
                    name=name or None)  # fmt: skip
    return build(
        conn,
        key=key,
        type=kind,
        who=who,
        at=at,
        object_id=record_id,
        object_type=sobject,
        extensions={"salesforce_object": sobject[:100]},
    )
