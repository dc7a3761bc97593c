"""Creating, rotating and looking up webhook connections.

The receiver looks a connection up on every request, so a resolved ``ConnectionInfo`` (kind,
tenant, config, currently valid secrets) is cached in-process for a few seconds; a rotation or a
disabled connection therefore takes effect within ``CACHE_SECONDS`` in a running server.
"""

from __future__ import annotations

import base64
import re
import secrets as random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from webhooks.models import WebhookConnection, WebhookSecret

KINDS = (
    "moodle",
    "canvas",
    "canvas-caliper",
    "caliper",
    "xapi",
    "hubspot",
    "salesforce",
    "standard",
)
IDENTITY_MODES = ("id", "email")
# Sources whose user id can be the ``sub`` of the same platform's LTI launches (Moodle's is).
LTI_KINDS = ("moodle", "canvas", "canvas-caliper", "caliper", "xapi")
CANVAS_KINDS = ("canvas", "canvas-caliper")
CACHE_SECONDS = 5.0
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ORG_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


class ConnectionError_(ValueError):  # the underscore: not the builtin ConnectionError
    """A connection cannot be created or changed as asked (bad kind, option or secret)."""


@dataclass(frozen=True)
class ConnectionInfo:
    """What a receiver needs to know about a connection, detached from any session."""

    id: int
    public_id: str
    tenant_id: int
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """The inbox ``source``: ids from different connections can never collide."""
        return f"{self.kind}:{self.public_id}"

    @property
    def namespace(self) -> str:
        """Prefix of actor ids; two connections to one system may share it (``--namespace``).

        With ``--lti-registration N`` it is ``lti:N``, so a user id becomes exactly the actor id
        an LTI launch from that registration gives its ``sub`` (``lti.visits.actor_id``): the
        webhook and the launch land on one player whichever arrives first."""
        registration = self.config.get("lti_registration")
        if registration is not None and self.kind in CANVAS_KINDS:
            # Canvas's LTI sub is opaque; its launches carry the Canvas id as a custom
            # parameter instead (lti.canvas_link), recorded under this namespace.
            return f"lti:{int(registration)}:canvas"
        if registration is not None:
            return f"lti:{int(registration)}"
        return str(self.config.get("namespace") or self.public_id)

    @property
    def identity(self) -> str:
        return str(self.config.get("identity") or "id")


def new_secret(kind: str) -> str:
    if kind == "standard":
        return "whsec_" + base64.b64encode(random.token_bytes(24)).decode()
    return random.token_urlsafe(32)


def check_secret(kind: str, secret: str) -> None:
    if not secret or len(secret) > 512:
        raise ConnectionError_("a secret must be 1-512 characters")
    if kind == "standard":
        from webhooks.signatures import standard_key

        try:
            standard_key(secret)
        except ValueError as exc:
            raise ConnectionError_(str(exc)) from exc


def build_config(
    kind: str,
    *,
    identity: str = "id",
    namespace: str | None = None,
    org_id: str | None = None,
    jwks_url: str | None = None,
    lti_registration: int | None = None,
    won_stages: tuple[str, ...] | list[str] | None = None,
) -> dict[str, Any]:
    """Validate the kind-specific options into the stored ``config``."""
    if kind not in KINDS:
        raise ConnectionError_(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    if identity not in IDENTITY_MODES:
        raise ConnectionError_("identity must be 'id' (the source's user id) or 'email'")
    config: dict[str, Any] = {"identity": identity}
    if namespace is not None:
        if not _NAMESPACE.match(namespace):
            raise ConnectionError_("namespace: 1-41 lowercase letters, digits or _ . -")
        config["namespace"] = namespace
    if lti_registration is not None:
        if kind not in LTI_KINDS:
            raise ConnectionError_(f"--lti-registration is only for {', '.join(LTI_KINDS)}")
        if namespace is not None:
            raise ConnectionError_("--lti-registration and --namespace exclude each other")
        config["lti_registration"] = int(lti_registration)
    if won_stages:
        if kind != "hubspot":
            raise ConnectionError_("--won-stage is only for hubspot")
        if not all(_STAGE.match(stage) for stage in won_stages):
            raise ConnectionError_("--won-stage: a HubSpot deal stage id (letters, digits, _ -)")
        config["won_stages"] = sorted(set(won_stages))
    if kind == "salesforce":
        if not org_id or not _ORG_ID.match(org_id):
            raise ConnectionError_("salesforce needs --org-id, the 15 or 18 character org id")
        config["org_id"] = org_id
    elif org_id:
        raise ConnectionError_("--org-id is only for salesforce")
    if jwks_url is not None:
        if kind not in ("canvas", "canvas-caliper"):
            raise ConnectionError_("--jwks-url is only for canvas and canvas-caliper")
        if not jwks_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConnectionError_("--jwks-url must be https (or loopback http for tests)")
        config["jwks_url"] = jwks_url
    return config


def create_connection(
    session: Session,
    tenant_id: int,
    kind: str,
    *,
    secret: str | None = None,
    label: str = "",
    **options: Any,
) -> tuple[WebhookConnection, str]:
    """Create a connection and its first secret; return both (the secret in clear)."""
    config = build_config(kind, **options)
    if "lti_registration" in config:
        _check_registration(session, tenant_id, config["lti_registration"])
    secret = secret if secret is not None else new_secret(kind)
    check_secret(kind, secret)
    conn = WebhookConnection(
        tenant_id=tenant_id,
        public_id="c" + random.token_hex(8),
        kind=kind,
        label=label,
        config=config,
    )
    session.add(conn)
    session.flush()
    session.add(WebhookSecret(tenant_id=tenant_id, connection_id=conn.id, secret=secret))
    session.flush()
    return conn, secret


def _check_registration(session: Session, tenant_id: int, registration_id: int) -> None:
    """The LTI registration must exist and feed the same tenant (no cross-tenant players)."""
    from lti.models import LtiRegistration

    owner = session.scalar(
        select(LtiRegistration.tenant_id).where(LtiRegistration.id == registration_id)
    )
    if owner != tenant_id:
        raise ConnectionError_(f"no LTI registration {registration_id} in this tenant")


def rotate_secret(
    session: Session,
    connection: WebhookConnection,
    now: datetime,
    *,
    overlap: timedelta,
    secret: str | None = None,
) -> str:
    """Add a new secret; the current ones stay valid for ``overlap`` and then expire."""
    secret = secret if secret is not None else new_secret(connection.kind)
    check_secret(connection.kind, secret)
    session.execute(
        update(WebhookSecret)
        .where(
            WebhookSecret.connection_id == connection.id,
            or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now + overlap),
        )
        .values(expires_at=now + overlap)
    )
    session.add(
        WebhookSecret(tenant_id=connection.tenant_id, connection_id=connection.id, secret=secret)
    )
    session.flush()
    return secret


def load_connection(session: Session, public_id: str, now: datetime) -> ConnectionInfo | None:
    """The enabled connection behind a URL id, with its secrets valid at ``now``."""
    conn = session.scalar(
        select(WebhookConnection).where(
            WebhookConnection.public_id == public_id, WebhookConnection.disabled_at.is_(None)
        )
    )
    if conn is None:
        return None
    rows = session.scalars(
        select(WebhookSecret.secret)
        .where(
            WebhookSecret.connection_id == conn.id,
            or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now),
        )
        .order_by(WebhookSecret.id.desc())
    )
    return ConnectionInfo(
        id=conn.id,
        public_id=conn.public_id,
        tenant_id=conn.tenant_id,
        kind=conn.kind,
        config=dict(conn.config or {}),
        secrets=tuple(rows),
    )


class ConnectionCache:
    """public id -> ConnectionInfo for ``CACHE_SECONDS``; unknown ids are not cached."""

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[ConnectionInfo, float]] = {}

    def get(
        self, sessions: Callable[[], Session], public_id: str, now: datetime
    ) -> ConnectionInfo | None:
        """The cached connection; ``sessions`` opens a session only on a miss (a hit costs no
        database work at all, which matters at hundreds of deliveries a second)."""
        clock = time.monotonic()
        with self._lock:
            hit = self._entries.get(public_id)
        if hit is not None and clock - hit[1] < self.seconds:
            return hit[0]
        with sessions() as session:
            info = load_connection(session, public_id, now)
        with self._lock:
            if info is None:
                self._entries.pop(public_id, None)
            else:
                self._entries[public_id] = (info, clock)
        return info
