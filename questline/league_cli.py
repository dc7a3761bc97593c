"""``questline leagues``: turn leagues on, show them, read a player's standings and history, and
close due weeks by hand (``questline scheduler`` does that on its own every tick).

The commands call the same functions as the API (``league_api``) and the scheduler
(``workers.leagues``), so what an operator sees here is what the widgets see.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from questline.rules_cli import _database, _tenant_id


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _scope(course: str | None) -> str:
    return f"course:{course}" if course else "tenant"


@click.group(help="Weekly leagues: configure, read standings and history, close due weeks.")
def leagues() -> None:
    pass


@leagues.command("enable", help="Turn leagues on (or change them) for a tenant or one course.")
@click.option("--tenant", required=True, help="Tenant id or name.")
@click.option("--course", default=None, help="Course id: a league of this course's XP only.")
@click.option("--tiers", default=None, help="Comma-separated tier names, lowest first.")
@click.option("--cohort-size", type=int, default=None)
@click.option("--promote", default=None, help="Promoted per tier: one number, or one per tier.")
@click.option("--demote", default=None, help="Demoted per tier: one number, or one per tier.")
@click.option("--disable", is_flag=True, help="Turn the league off (its history is kept).")
def enable(
    tenant: str,
    course: str | None,
    tiers: str | None,
    cohort_size: int | None,
    promote: str | None,
    demote: str | None,
    disable: bool,
) -> None:
    from questline.errors import Unprocessable
    from questline.league_api import config_json, save_config

    body: dict[str, Any] = {"league": _scope(course), "enabled": not disable}
    if tiers is not None:
        body["tiers"] = [t.strip() for t in tiers.split(",")]
    if cohort_size is not None:
        body["cohort_size"] = cohort_size
    for name, value in (("promote", promote), ("demote", demote)):
        if value is not None:
            body[name] = _counts(name, value)
    with _database().session() as session:
        try:
            league = save_config(session, _tenant_id(session, tenant), body)
        except Unprocessable as exc:
            raise click.ClickException(str(exc.message)) from None
        _echo(config_json(league))


def _counts(name: str, value: str) -> int | list[int]:
    try:
        numbers = [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(
            "give a whole number or a comma-separated list", param_hint=name
        ) from None
    return numbers[0] if len(numbers) == 1 else numbers


@leagues.command("show", help="Every league of a tenant, as JSON.")
@click.option("--tenant", required=True, help="Tenant id or name.")
def show(tenant: str) -> None:
    from sqlalchemy import select

    from questline.league_api import config_json
    from questline.league_models import League

    with _database().sessions() as session:
        tid = _tenant_id(session, tenant)
        rows = session.scalars(select(League).where(League.tenant_id == tid).order_by(League.id))
        _echo({"leagues": [config_json(lg) for lg in rows]})


@leagues.command("standings", help="A player's cohort this week: places, XP, zones, time left.")
@click.option("--tenant", required=True, help="Tenant id or name.")
@click.option("--player", "player_id", required=True, type=int)
@click.option("--course", default=None, help="The course's league instead of the tenant's.")
def standings(tenant: str, player_id: int, course: str | None) -> None:
    from questline.cli import _settings
    from questline.errors import NotFound
    from questline.league_api import cohort_standings
    from questline.leagues import LeagueStore
    from workers.context import build_context

    ctx = build_context(_settings())
    store = LeagueStore(ctx.redis, ctx.settings.redis_prefix)
    with ctx.db.sessions() as session:
        tid = _tenant_id(session, tenant)
        try:
            _echo(
                cohort_standings(session, store, tid, _scope(course), player_id, datetime.now(UTC))
            )
        except NotFound as exc:
            raise click.ClickException(exc.message) from None


@leagues.command("history", help="A player's finished weeks, newest first.")
@click.option("--tenant", required=True, help="Tenant id or name.")
@click.option("--player", "player_id", required=True, type=int)
@click.option("--course", default=None, help="The course's league instead of the tenant's.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
def history(tenant: str, player_id: int, course: str | None, limit: int) -> None:
    from questline.league_api import player_history
    from questline.league_repo import league_by_scope

    with _database().sessions() as session:
        tid = _tenant_id(session, tenant)
        league = league_by_scope(session, tid, _scope(course))
        if league is None:
            raise click.ClickException(f"no league for {_scope(course)!r}")
        _echo(player_history(session, league, player_id, limit))


@leagues.command("close", help="Close every week that has ended (as the scheduler does).")
@click.option("--tenant", default=None, help="Only this tenant (id or name).")
@click.option(
    "--grace-seconds",
    type=click.IntRange(0, None),
    default=None,
    help="Wait this long after a week's end (default QUESTLINE_LEAGUE_CLOSE_GRACE_SECONDS).",
)
def close(tenant: str | None, grace_seconds: int | None) -> None:
    from questline.cli import _settings
    from questline.leagues import LeagueStore
    from workers.context import build_context
    from workers.leagues import close_due_weeks

    ctx = build_context(_settings())
    tid = None
    if tenant is not None:
        with ctx.db.sessions() as session:
            tid = _tenant_id(session, tenant)
    grace = timedelta(
        seconds=ctx.settings.league_close_grace_seconds if grace_seconds is None else grace_seconds
    )
    store = LeagueStore(ctx.redis, ctx.settings.redis_prefix)
    report = close_due_weeks(ctx.db, store, datetime.now(UTC), grace, tid)
    if report.events:
        ctx.dispatcher.wake()
    click.echo(
        f"closed {len(report.weeks_closed)} weeks: {report.promoted} promoted, "
        f"{report.demoted} demoted, {report.results} results, "
        f"{report.events} league.finished events, {report.joined_late} joined the new week"
    )
