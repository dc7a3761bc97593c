"""``questline lti ...``: tool keys and platform registrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from questline.db import Database
    from questline.settings import Settings


@contextmanager
def _database() -> Iterator[tuple[Settings, Database]]:
    """Settings and a database for one command, its connections closed when it ends."""
    from questline.cli import _settings
    from questline.db import Database

    settings = _settings()
    database = Database(settings.database_url)
    try:
        yield settings, database
    finally:
        database.dispose()


@click.group(help="The LTI 1.3 tool: keys and platform registrations.")
def lti() -> None:
    pass


@lti.group(help="The tool's signing keys (published at /lti/jwks).")
def keys() -> None:
    pass


@keys.command("rotate", help="Add a new signing key; the old one stays published for an hour.")
def keys_rotate() -> None:
    from lti.keys import KEY_GRACE, generate_key

    with _database() as (settings, database), database.session() as session:
        key = generate_key(session, settings.secret_key, datetime.now(UTC))
    click.echo(f"new signing key {key.kid}; older keys stay published for {KEY_GRACE}")


@lti.command("register", help="Register a platform (issuer + client id) for a tenant.")
@click.option("--tenant", required=True, help="tenant id or name")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True)
@click.option("--auth-login-url", required=True, help="the platform's OIDC auth endpoint")
@click.option("--auth-token-url", required=True, help="the platform's OAuth2 token endpoint")
@click.option("--key-set-url", required=True, help="the platform's JWKS URL")
@click.option("--auth-audience", default=None, help="token audience, if not the token URL")
def register(
    tenant: str,
    issuer: str,
    client_id: str,
    deployment_ids: tuple[str, ...],
    auth_login_url: str,
    auth_token_url: str,
    key_set_url: str,
    auth_audience: str | None,
) -> None:
    from lti.registrations import InvalidRegistration, find_tenant, register_platform

    try:
        with _database() as (_, database), database.session() as session:
            row = register_platform(
                session,
                tenant_id=find_tenant(session, tenant).id,
                issuer=issuer,
                client_id=client_id,
                deployment_ids=deployment_ids,
                auth_login_url=auth_login_url,
                auth_token_url=auth_token_url,
                key_set_url=key_set_url,
                auth_audience=auth_audience,
            )
            reg_id, tenant_id = row.id, row.tenant_id
    except InvalidRegistration as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"registration {reg_id}: {issuer} client {client_id} for tenant {tenant_id}")


@lti.command("registration-url", help="Print the dynamic registration URL for a tenant.")
@click.option("--tenant", required=True, help="tenant id or name")
@click.option("--base-url", default=None, help="Questline's public URL (else QUESTLINE_PUBLIC_URL)")
def registration_url(tenant: str, base_url: str | None) -> None:
    """The URL an LMS administrator pastes into Moodle (Tool URL) or Canvas (Dynamic
    Registration). It carries a signed tenant invitation valid for seven days."""
    from lti.dynamic_registration import INVITATION_MAX_AGE, invitation
    from lti.registrations import InvalidRegistration, find_tenant

    try:
        with _database() as (settings, database), database.sessions() as session:
            tenant_id = find_tenant(session, tenant).id
    except InvalidRegistration as exc:
        raise click.ClickException(str(exc)) from None
    base = (base_url or settings.public_url or "").rstrip("/")
    if not base:
        raise click.ClickException("give --base-url or set QUESTLINE_PUBLIC_URL")
    click.echo(f"{base}/lti/register?tenant={invitation(settings.secret_key, tenant_id)}")
    click.echo(f"(valid for {INVITATION_MAX_AGE.days} days)", err=True)


@lti.group(help="Deployment ids a registered platform may launch with.")
def deployments() -> None:
    pass


@deployments.command("add", help="Allow more deployment ids for a registration.")
@click.option("--registration", "registration_id", type=int, required=True)
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True)
def deployments_add(registration_id: int, deployment_ids: tuple[str, ...]) -> None:
    from lti.models import LtiRegistration
    from lti.registrations import register_platform

    with _database() as (_, database), database.session() as session:
        row = session.get(LtiRegistration, registration_id)
        if row is None:
            raise click.ClickException(f"no registration {registration_id}")
        register_platform(
            session,
            tenant_id=row.tenant_id,
            issuer=row.issuer,
            client_id=row.client_id,
            deployment_ids=deployment_ids,
            auth_login_url=row.auth_login_url,
            auth_token_url=row.auth_token_url,
            key_set_url=row.key_set_url,
            auth_audience=row.auth_audience,
            method=row.method,
        )
    click.echo(f"registration {registration_id}: deployments {', '.join(deployment_ids)} allowed")


@lti.group(help="Names and Role Provisioning: the class list.")
def roster() -> None:
    pass


@roster.command("sync", help="Sync every course's roster (run it on a schedule, e.g. hourly).")
@click.option("--course", "course_id", type=int, default=None, help="only this course id")
def roster_sync(course_id: int | None) -> None:
    from lti.roster import sync_all

    with _database() as (settings, database):
        report = sync_all(database, settings.secret_key, datetime.now(UTC), course_id)
    for line in report:
        click.echo(line)
    if any(line.startswith("failed") for line in report):
        raise SystemExit(1)


@lti.group(help="Assignment and Grade Services: progress posted as scores.")
def grades() -> None:
    pass


@grades.command("sync", help="Queue changed progress for graded courses and post due scores.")
def grades_sync() -> None:
    from lti.grades import deliver_due, queue_all
    from lti.keys import SigningKeyCache

    now = datetime.now(UTC)
    with _database() as (settings, database):
        with database.session() as session:
            queued = queue_all(session, now)
        stats = deliver_due(database, settings, SigningKeyCache(settings.secret_key), now)
    click.echo(
        f"queued {queued}; sent {stats.sent}, retrying {stats.retried}, gave up {stats.dead}"
    )
