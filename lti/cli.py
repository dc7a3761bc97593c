"""``questline lti ...``: tool keys and platform registrations."""

from __future__ import annotations

from datetime import UTC, datetime

import click


@click.group(help="The LTI 1.3 tool: keys and platform registrations.")
def lti() -> None:
    pass


@lti.group(help="The tool's signing keys (published at /lti/jwks).")
def keys() -> None:
    pass


@keys.command("rotate", help="Add a new signing key; the old one stays published for an hour.")
def keys_rotate() -> None:
    from lti.keys import KEY_GRACE, generate_key
    from questline.cli import _settings
    from questline.db import Database

    settings = _settings()
    database = Database(settings.database_url)
    with database.session() as session:
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
    from questline.cli import _settings
    from questline.db import Database

    database = Database(_settings().database_url)
    try:
        with database.session() as session:
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
