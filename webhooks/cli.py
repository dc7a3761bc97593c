"""``questline connections``: create, list, rotate and disable webhook connections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click


def _context():  # type: ignore[no-untyped-def]
    from questline.cli import _settings
    from questline.db import Database

    settings = _settings()
    return settings, Database(settings.database_url)


def _tenant_id(session, tenant: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from questline.models import Tenant

    query = select(Tenant.id).where(
        Tenant.id == int(tenant) if tenant.isdigit() else Tenant.name == tenant
    )
    found = session.scalar(query)
    if found is None:
        raise click.ClickException(f"no tenant {tenant!r}")
    return int(found)


def _url(base: str | None, public_id: str) -> str:
    return f"{(base or 'http://127.0.0.1:8000').rstrip('/')}/webhooks/{public_id}"


@click.group(help="Webhook connections: one URL and secret per sending system.")
def connections() -> None:
    pass


@connections.command(help="Create a connection; prints its URL and secret (shown once).")
@click.option("--tenant", required=True, help="tenant name or id")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(
        ["moodle", "canvas", "canvas-caliper", "caliper", "xapi", "hubspot", "salesforce",
         "standard"]
    ),
)  # fmt: skip
@click.option("--secret", default=None, help="a secret the source issues (HubSpot: client secret)")
@click.option("--label", default="", help="a name for people")
@click.option(
    "--identity",
    type=click.Choice(["id", "email"]),
    default="id",
    show_default=True,
    help="match people by the source's user id, or by email when the event carries one",
)
@click.option("--namespace", default=None, help="share actor ids with another connection")
@click.option("--org-id", default=None, help="salesforce: the organization id to accept")
@click.option("--jwks-url", default=None, help="canvas: JWKS URL for signed-JWT deliveries")
@click.option(
    "--lti-registration",
    type=int,
    default=None,
    help="LMS kinds: user ids are the LTI sub of this registration's launches (one player)",
)
@click.option(
    "--won-stage",
    "won_stages",
    multiple=True,
    help="hubspot: deal stage ids that count as won (default closedwon; repeat the option)",
)
def create(
    tenant: str,
    kind: str,
    secret: str | None,
    label: str,
    identity: str,
    namespace: str | None,
    org_id: str | None,
    jwks_url: str | None,
    lti_registration: int | None,
    won_stages: tuple[str, ...],
) -> None:
    from webhooks.connections import ConnectionError_, create_connection

    settings, db = _context()
    try:
        with db.session() as session:
            conn, clear = create_connection(
                session,
                _tenant_id(session, tenant),
                kind,
                secret=secret,
                label=label,
                identity=identity,
                namespace=namespace,
                org_id=org_id,
                jwks_url=jwks_url,
                lti_registration=lti_registration,
                won_stages=won_stages,
            )
            public_id = conn.public_id
    except ConnectionError_ as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()
    click.echo(f"connection: {public_id} ({kind})")
    click.echo(f"url: POST {_url(settings.public_url, public_id)}")
    click.echo(f"secret: {clear}")


@connections.command("list", help="List a tenant's connections (secrets are not shown).")
@click.option("--tenant", required=True)
def list_(tenant: str) -> None:
    from sqlalchemy import select

    from webhooks.models import WebhookConnection

    settings, db = _context()
    with db.sessions() as session:
        rows = session.scalars(
            select(WebhookConnection)
            .where(WebhookConnection.tenant_id == _tenant_id(session, tenant))
            .order_by(WebhookConnection.id)
        ).all()
        for conn in rows:
            state = "disabled" if conn.disabled_at else "enabled"
            url = _url(settings.public_url, conn.public_id)
            click.echo(f"{conn.public_id}\t{conn.kind}\t{state}\t{_mapping(conn)}\t{url}")
    db.dispose()


def _mapping(conn) -> str:  # type: ignore[no-untyped-def]
    """How the connection maps people: by id or email, and the actor-id namespace."""
    from webhooks.connections import ConnectionInfo

    info = ConnectionInfo(conn.id, conn.public_id, conn.tenant_id, conn.kind, conn.config or {})
    return f"identity={info.identity} namespace={info.namespace}"


def _connection(session, public_id: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from webhooks.models import WebhookConnection

    conn = session.scalar(select(WebhookConnection).where(WebhookConnection.public_id == public_id))
    if conn is None:
        raise click.ClickException(f"no connection {public_id!r}")
    return conn


@connections.command(help="Add a new secret; the old ones keep working for --overlap.")
@click.argument("public_id")
@click.option("--secret", default=None, help="the new secret (default: generated)")
@click.option("--overlap", default=86400, show_default=True, help="seconds the old secret lives")
def rotate(public_id: str, secret: str | None, overlap: int) -> None:
    from webhooks.connections import ConnectionError_, rotate_secret

    if overlap < 0:
        raise click.ClickException("--overlap must be 0 or more seconds")
    _settings, db = _context()
    now = datetime.now(UTC)
    try:
        with db.session() as session:
            clear = rotate_secret(
                session, _connection(session, public_id), now,
                overlap=timedelta(seconds=overlap), secret=secret,
            )  # fmt: skip
    except ConnectionError_ as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()
    click.echo(f"secret: {clear}")
    click.echo(f"previous secrets expire at {(now + timedelta(seconds=overlap)).isoformat()}")


@connections.command(help="Disable a connection: its URL answers 404 from then on.")
@click.argument("public_id")
def disable(public_id: str) -> None:
    _settings, db = _context()
    with db.session() as session:
        _connection(session, public_id).disabled_at = datetime.now(UTC)
    db.dispose()
    click.echo(f"{public_id} disabled")


@click.group(help="Outbound webhooks: subscribe URLs to Questline's events, read the log.")
def webhooks() -> None:
    pass


@webhooks.command("subscribe", help="Subscribe a URL; prints the whsec_ signing secret once.")
@click.option("--tenant", required=True)
@click.option("--url", required=True)
@click.option("--event", "events", multiple=True, required=True,
              help="badge.awarded, level.reached, streak.extended, quest.completed, "
                   "league.finished, streak.at_risk, badge.near, league.at_risk "
                   "(repeat the option)")  # fmt: skip
def subscribe_cmd(tenant: str, url: str, events: tuple[str, ...]) -> None:
    from webhooks.outbound import SubscriptionError, subscribe

    settings, db = _context()
    try:
        with db.session() as session:
            tenant_id = _tenant_id(session, tenant)
            allow = settings.outbound_allow_private
            sub, secret = subscribe(session, tenant_id, url, list(events), allow_private=allow)
            sub_id = sub.id
    except SubscriptionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()
    click.echo(f"subscription: {sub_id}")
    click.echo(f"secret: {secret}")


@webhooks.command("log", help="The latest outbound messages and every delivery attempt.")
@click.option("--tenant", required=True)
@click.option("--limit", default=20, show_default=True)
def log_cmd(tenant: str, limit: int) -> None:
    import json

    from webhooks.outbound import delivery_log

    _settings, db = _context()
    with db.sessions() as session:
        for entry in delivery_log(session, _tenant_id(session, tenant), limit):
            click.echo(json.dumps(entry))
    db.dispose()


@webhooks.command("deliver", help="Deliver the due outbound messages once (cron or scheduler).")
def deliver_cmd() -> None:
    from webhooks.outbound import deliver_due

    settings, db = _context()
    stats = deliver_due(db, datetime.now(UTC), allow_private=settings.outbound_allow_private)
    db.dispose()
    click.echo(f"delivered {stats.delivered}, retrying {stats.retrying}, failed {stats.failed}")
