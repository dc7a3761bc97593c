"""``questline rules``: check a rule file, load (store + activate) it, list and roll back versions.

Commands import their heavy modules inside the function, so ``questline --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click


def _read(path: str) -> Any:
    from workers.rulesets import read_document

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc
    return read_document(text)


def _database() -> Any:
    from questline.cli import _settings
    from questline.db import Database

    return Database(_settings().database_url)


def _tenant_id(session: Any, tenant: str) -> int:
    """A tenant by id or by exact name."""
    from sqlalchemy import select

    from questline.models import Tenant

    found = None
    if tenant.isdigit():
        found = session.scalar(select(Tenant.id).where(Tenant.id == int(tenant)))
    if found is None:
        found = session.scalar(select(Tenant.id).where(Tenant.name == tenant))
    if found is None:
        raise click.ClickException(f"no tenant {tenant!r} (give its id or its exact name)")
    return int(found)


@click.group(help="Rule sets: check, load, list and activate versions.")
def rules() -> None:
    pass


@rules.command(
    "check", help="Validate a rule file (YAML or JSON); print every error with its path."
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--course", default=None, help="Check it as this course's rule set (no levels).")
def check(file: str, course: str | None) -> None:
    from engine.rules import InvalidRules, parse_rules

    try:
        ruleset = parse_rules(_read(file), scope="course" if course else "tenant")
    except InvalidRules as exc:
        for error in exc.errors:
            click.echo(f"{file}: {error}", err=True)
        click.echo(f"{len(exc.errors)} error(s)", err=True)
        sys.exit(1)
    click.echo(
        f"{file}: ok ({len(ruleset.xp)} XP rules, {len(ruleset.multipliers)} multipliers, "
        f"{len(ruleset.badges)} badges)"
    )


@rules.command("load", help="Store a rule file as a new version and activate it.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--tenant", required=True, help="Tenant id or name.")
@click.option("--course", default=None, help="Course id: load a course rule set.")
@click.option("--inactive", is_flag=True, help="Store the version without activating it.")
@click.option(
    "--retro",
    is_flag=True,
    help="Also apply the new rules to history: replay, re-score XP, award badges (idempotent).",
)
def load(file: str, tenant: str, course: str | None, inactive: bool, retro: bool) -> None:
    from engine.rules import InvalidRules
    from workers.rulesets import store_version

    if retro and inactive:
        raise click.UsageError("--retro applies the active rules; it cannot be --inactive")
    document = _read(file)
    database = _database()
    report = None
    try:
        with database.session() as session:
            tenant_id = _tenant_id(session, tenant)
            version = store_version(
                session, tenant_id, document, course=course, actor="cli", activate=not inactive
            )
            if retro:
                report = _retro(session, tenant_id, version, course)
    except InvalidRules as exc:
        for error in exc.errors:
            click.echo(f"{file}: {error}", err=True)
        sys.exit(1)
    finally:
        database.dispose()
    state = "stored" if inactive else "active"
    scope = f"course {course}" if course else "tenant"
    click.echo(f"{scope} rules version {version} {state}")
    if report is not None:
        click.echo(
            f"retro: {report.events} events of {report.players} players replayed; "
            f"{report.xp_rows} XP adjustments ({report.xp_delta:+d} XP), {report.badges} badges "
            f"awarded, {report.badges_revoked} revoked, {report.credits} coin credits, "
            f"{report.clawbacks} clawbacks ({report.coins_taken} coins taken back, "
            f"{report.coins_forgiven} forgiven as already spent)"
        )
        _rebuild_boards(tenant_id)


def _retro(session: Any, tenant_id: int, version: int, course: str | None) -> Any:
    from questline.rules_replay import count_history, retro_apply

    total = count_history(session, tenant_id, since=None, course=None)
    with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
        return retro_apply(
            session, tenant_id, version=version, course=course, actor="cli", progress=bar.update
        )


def _rebuild_boards(tenant_id: int) -> None:
    """Boards are derived from PostgreSQL: rebuild this tenant's after a re-score."""
    from questline.cli import _settings
    from questline.reconcile import reconcile
    from workers.context import build_context

    ctx = build_context(_settings())
    try:
        reconcile(ctx.db, ctx.boards, tenant_id)
    except Exception as exc:  # Redis down: the truth is saved; say how to repair
        click.echo(f"boards not rebuilt ({exc}); run `questline reconcile`", err=True)
    finally:
        ctx.db.dispose()


@rules.command(
    "simulate",
    help="Replay stored history through a candidate rule file and print what would change. "
    "Writes nothing.",
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--tenant", required=True, help="Tenant id or name.")
@click.option("--course", default=None, help="The file is this course's rule set.")
@click.option("--since", default="30d", show_default=True, help="How far back: 30d, 12h, all.")
def simulate(file: str, tenant: str, course: str | None, since: str) -> None:
    from datetime import UTC, datetime, timedelta

    from engine.rules import InvalidRules
    from engine.xp_rules import parse_duration
    from questline.rules_replay import count_history
    from questline.rules_replay import simulate as run

    start = None
    if since != "all":
        try:
            start = datetime.now(UTC) - timedelta(seconds=parse_duration(since))
        except ValueError:
            raise click.BadParameter("a duration such as 30d or 12h, or all") from None
    document = _read(file)
    database = _database()
    try:
        with database.sessions() as session:
            tenant_id = _tenant_id(session, tenant)
            total = count_history(session, tenant_id, since=start, course=None)
            with click.progressbar(length=total, label="replaying", file=sys.stderr) as bar:
                report = run(
                    session,
                    tenant_id,
                    document,
                    course=course,
                    since=start,
                    progress=bar.update,
                )
            session.rollback()  # nothing was written; make sure of it
    except InvalidRules as exc:
        for error in exc.errors:
            click.echo(f"{file}: {error}", err=True)
        sys.exit(1)
    finally:
        database.dispose()
    for line in report.lines():
        click.echo(line)


@rules.command("activate", help="Activate a stored version (for example to roll back).")
@click.argument("version", type=int)
@click.option("--tenant", required=True, help="Tenant id or name.")
@click.option("--course", default=None, help="Course id.")
def activate(version: int, tenant: str, course: str | None) -> None:
    from workers.rulesets import activate_version

    database = _database()
    try:
        with database.session() as session:
            activate_version(
                session, _tenant_id(session, tenant), version, course=course, actor="cli"
            )
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.dispose()
    click.echo(f"version {version} active")


@rules.command("show", help="Print the active rule sets (or the versions of one) as JSON.")
@click.option("--tenant", required=True, help="Tenant id or name.")
@click.option("--course", default=None, help="Course id: list that course's versions.")
@click.option("--versions", "all_versions", is_flag=True, help="Every version, newest first.")
def show(tenant: str, course: str | None, all_versions: bool) -> None:
    from workers.rulesets import active_sets, versions

    database = _database()
    try:
        with database.sessions() as session:
            tenant_id = _tenant_id(session, tenant)
            if all_versions or course is not None:
                found = versions(session, tenant_id, course)
            else:
                found = active_sets(session, tenant_id)
            out = [v.as_dict() for v in found]
    finally:
        database.dispose()
    click.echo(json.dumps(out, indent=2))
