"""``questline badges``: the tenant signing keys behind Open Badges credentials.

Rotation is two steps on purpose: ``rotate-key`` adds a key that signs from then on while the old
one stays published (everything it signed still verifies); ``retire-key`` withdraws a key, for
when it leaked, and what it signed stops verifying.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from questline.db import Database
    from questline.settings import Settings


def _database() -> tuple[Settings, Database]:
    from questline.cli import _settings
    from questline.db import Database

    settings = _settings()
    return settings, Database(settings.database_url)


def _tenant(session: Session, tenant_id: int) -> None:
    from questline.models import Tenant

    if session.get(Tenant, tenant_id) is None:
        raise click.ClickException(f"no tenant {tenant_id}")


@click.group(help="Open Badges: tenant signing keys.")
def badges() -> None:
    pass


@badges.command("keys", help="List a tenant's Open Badges keys (newest signs).")
@click.argument("tenant_id", type=int)
def keys_list(tenant_id: int) -> None:
    from sqlalchemy import select

    from credentials.models import IssuerKey

    _settings, database = _database()
    with database.session() as session:
        _tenant(session, tenant_id)
        rows = session.scalars(
            select(IssuerKey).where(IssuerKey.tenant_id == tenant_id).order_by(IssuerKey.id)
        ).all()
        if not rows:
            click.echo("no keys yet (one is made when the first credential is issued)")
        for row in rows:
            state = f"retired {row.retired_at:%Y-%m-%d}" if row.retired_at else "active"
            click.echo(f"{row.multikey}  created {row.created_at:%Y-%m-%d}  {state}")
    database.dispose()


@badges.command("rotate-key", help="Add a new signing key; older keys stay published.")
@click.argument("tenant_id", type=int)
def rotate_key(tenant_id: int) -> None:
    from credentials.service import add_key

    settings, database = _database()
    with database.session() as session:
        _tenant(session, tenant_id)
        row = add_key(session, tenant_id, settings.secret_key)
        click.echo(f"new signing key {row.multikey}")
    database.dispose()


@badges.command("retire-key", help="Withdraw a key (leaked): what it signed stops verifying.")
@click.argument("tenant_id", type=int)
@click.argument("multikey")
def retire(tenant_id: int, multikey: str) -> None:
    from credentials.service import retire_key

    _settings, database = _database()
    with database.session() as session:
        _tenant(session, tenant_id)
        if not retire_key(session, tenant_id, multikey, datetime.now(UTC)):
            raise click.ClickException(f"tenant {tenant_id} has no active key {multikey}")
        click.echo(f"retired {multikey}")
    database.dispose()
