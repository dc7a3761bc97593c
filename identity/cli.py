"""``questline sso ...`` and ``questline players ...``: SSO settings, links, merges and privacy.

These are the operator's tools (run on the server, with the database's credentials); tenant
admins do the same through the identity API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from questline.db import Database


@contextmanager
def _database() -> Iterator[Database]:
    from questline.cli import _settings
    from questline.db import Database

    database = Database(_settings().database_url)
    try:
        yield database
    finally:
        database.dispose()


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(getattr(exc, "message", str(exc)))


@click.group(help="Per-tenant OpenID Connect single sign-on.")
def sso() -> None:
    pass


@sso.command("configure", help="Create or update a tenant's OpenID provider and link rules.")
@click.option("--tenant", "tenant_ref", required=True, help="Tenant id or name.")
@click.option("--issuer", help="The provider's issuer URL (discovery is read from it).")
@click.option("--client-id")
@click.option("--client-secret")
@click.option("--scopes", help='Default "openid email profile".')
@click.option("--allowed-domains", help="Comma-separated email domains allowed to sign in.")
@click.option("--link-by-email/--no-link-by-email", default=None, help="Link verified emails.")
@click.option("--link-claim", help="Employee / SIS id claim to link by (e.g. employee_id).")
@click.option("--roles-claim", help='Claim holding groups (default "groups").')
@click.option("--admin-group", help="Group in that claim that makes a tenant admin.")
@click.option("--api-audience", help="aud of client-credentials access tokens for this tenant.")
def sso_configure(tenant_ref: str, **options: Any) -> None:
    from identity.config import config_json, configure_sso, find_tenant
    from questline.cli import _settings
    from questline.errors import QuestlineError

    values = {k: v for k, v in options.items() if v is not None}
    secret_key = _settings().secret_key
    with _database() as database, database.session() as session:
        try:
            tenant = find_tenant(session, tenant_ref)
            config = configure_sso(session, tenant.id, values, "cli", secret_key=secret_key)
        except QuestlineError as exc:
            raise _fail(exc) from None
        shown = config_json(config)
        tenant_id = tenant.id
    click.echo(json.dumps(shown, indent=2))
    click.echo(f"login URL: <public url>/sso/{tenant_id}/login")
    click.echo(f"redirect URI to register at the provider: <public url>/sso/{tenant_id}/callback")


@click.group(help="Players: export, erase and merge (link and unlink: the identity API).")
def players() -> None:
    pass


@players.command("export", help="Print everything stored about a player as JSON.")
@click.argument("player_id", type=int)
@click.option("--tenant", "tenant_ref", required=True, help="Tenant id or name.")
def players_export(player_id: int, tenant_ref: str) -> None:
    from identity.config import find_tenant
    from identity.privacy import export_player
    from questline.errors import QuestlineError

    with _database() as database, database.sessions() as session:
        try:
            data = export_player(session, find_tenant(session, tenant_ref).id, player_id)
        except QuestlineError as exc:
            raise _fail(exc) from None
    click.echo(json.dumps(data, indent=2, default=str))


@players.command("erase", help="Erase a player's personal data; aggregates stay, anonymised.")
@click.argument("player_id", type=int)
@click.option("--tenant", "tenant_ref", required=True, help="Tenant id or name.")
@click.confirmation_option(prompt="Erase this player's personal data for good?")
def players_erase(player_id: int, tenant_ref: str) -> None:
    from identity.config import find_tenant
    from identity.privacy import erase_player
    from questline.errors import QuestlineError

    with _database() as database, database.session() as session:
        try:
            result = erase_player(session, find_tenant(session, tenant_ref).id, player_id, "cli")
        except QuestlineError as exc:
            raise _fail(exc) from None
    click.echo(json.dumps(result))


@players.command("merge", help="Merge SOURCE into TARGET (ledgers combined, audit-logged).")
@click.argument("source", type=int)
@click.argument("target", type=int)
@click.option("--tenant", "tenant_ref", required=True, help="Tenant id or name.")
def players_merge(source: int, target: int, tenant_ref: str) -> None:
    from identity.config import find_tenant
    from identity.merge import merge_players
    from questline.errors import QuestlineError

    with _database() as database, database.session() as session:
        try:
            tenant_id = find_tenant(session, tenant_ref).id
            result = merge_players(session, tenant_id, source, target, "cli")
        except QuestlineError as exc:
            raise _fail(exc) from None
    click.echo(json.dumps({"already_merged": result.already_merged, "moved": result.moved}))
    click.echo("run `questline reconcile` to rebuild the boards from the ledger")


@click.group(help="Platform operators (across tenants): keys for the /api/v1/ops API.")
def operators() -> None:
    pass


@operators.command("new-key", help="Print a new operator key and the digest to configure.")
def operators_new_key() -> None:
    from identity.operators import new_operator_key

    key, digest = new_operator_key()
    click.echo(f"operator key (give it to the operator; shown once): {key}")
    click.echo(f"add to QUESTLINE_OPERATOR_KEY_HASHES (comma-separated) and restart: {digest}")


@click.group(help="Privacy: the retention policy (docs/identity.md).")
def privacy() -> None:
    pass


@privacy.command("purge", help="Delete or anonymise what the retention policy says is past due.")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    help="Raw bodies older than this many days (default QUESTLINE_RETENTION_DAYS; 0 = keep).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go, change nothing.")
def privacy_purge(days: int | None, dry_run: bool) -> None:
    from datetime import UTC, datetime

    from identity.retention import purge
    from questline.cli import _settings

    retention = _settings().retention_days if days is None else days
    with _database() as database, database.sessions() as session:
        report = purge(session, datetime.now(UTC), retention)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    click.echo(json.dumps({**report.as_dict(), "retention_days": retention, "dry_run": dry_run}))
