"""The ``questline`` command: serve, worker, scheduler, demo, db, tenants, reconcile, events."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select, update

from questline.settings import Settings, SettingsError, load_settings

log = logging.getLogger("questline.cli")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _setup_logging(settings: Settings) -> None:
    from questline.logs import configure_logging

    configure_logging(settings.log_level, settings.log_json)


@click.group(help="Questline: gamification for learning platforms.")
def main() -> None:
    pass


@main.command(help="Serve the web app under gunicorn (embedded default: one process, jobs inline).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=int, default=None, help="gunicorn workers [QUESTLINE_WEB_WORKERS]")
@click.option(
    "--threads", type=int, default=None, help="threads per worker [QUESTLINE_WEB_THREADS]"
)
def serve(host: str, port: int, workers: int | None, threads: int | None) -> None:
    from questline import create_app
    from questline.server import serve as run

    settings = _settings()
    _setup_logging(settings)
    count = 1 if settings.embedded else workers or settings.web_workers
    if count > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several gunicorn workers: share metric values through files so /metrics sums them.
        # Must be set before questline.metrics is first imported (inside create_app).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="questline-metrics-")
    app = create_app(settings)
    if settings.embedded:
        # In-process Redis and inline jobs live in one process: one worker, a few threads.
        click.echo(f"Questline (embedded: {settings.database_url}) on http://{host}:{port}")
        run(app, host=host, port=port, workers=1, threads=4)
    else:
        click.echo(f"Questline on http://{host}:{port}")
        run(app, host=host, port=port, workers=count, threads=threads or settings.web_threads)


@main.command(help="Run an RQ worker that drains the inbox (needs QUESTLINE_REDIS_URL).")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    from rq import SimpleWorker

    from workers.context import build_context, set_worker_context

    settings = _settings()
    if settings.embedded:
        raise click.ClickException(
            "no QUESTLINE_REDIS_URL: in the embedded default jobs run inline in `serve`"
        )
    _setup_logging(settings)
    ctx = build_context(settings)
    set_worker_context(ctx)
    if settings.worker_metrics_address:
        from prometheus_client import start_http_server

        host, _, port = settings.worker_metrics_address.rpartition(":")
        start_http_server(int(port), addr=host or "127.0.0.1")
    # SimpleWorker runs jobs in this process: RQ's forking worker costs a fork per job
    # (about 45 jobs/s here), and our jobs are batch drains that need no isolation.
    SimpleWorker([settings.queue_name], connection=ctx.redis).work(
        burst=burst, with_scheduler=True, logging_level=settings.log_level
    )


@main.command(help="Periodic duties: wake workers for inbox rows whose job was lost or is due.")
@click.option("--once", is_flag=True, help="Run one sweep and exit.")
def scheduler(once: bool) -> None:
    from workers.context import build_context
    from workers.sweep import sweep

    settings = _settings()
    _setup_logging(settings)
    ctx = build_context(settings)
    last_run: dict[str, float] = {}
    while True:
        due = sweep(ctx)
        if due:
            log.info("sweep woke workers", extra={"due": due})
        _close_league_weeks(ctx)  # issue 4: weekly league close
        __import__("webhooks.jobs").jobs.wake_delivery(ctx)  # issue 6: outbound webhooks
        _every(last_run, "lti roster sync", settings.lti_roster_sync_seconds, _lti_roster_sync, ctx)
        _every(last_run, "lti grades sync", settings.lti_grades_sync_seconds, _lti_grades_sync, ctx)
        _every(last_run, "privacy purge", 86400, _privacy_purge, ctx)  # issue 8: retention
        _every(last_run, "nudges", settings.nudge_scan_seconds, _nudges, ctx)  # issue 7
        if once:
            click.echo(f"{due} inbox rows due")
            return
        time.sleep(settings.sweep_interval_seconds)


def _every(last_run: dict[str, float], name: str, seconds: int, task: Any, ctx: Any) -> None:
    """Run ``task`` at most once per ``seconds`` (0 = never); a failure is logged, not fatal,
    so one unreachable LMS never stops the sweep that keeps events moving."""
    now = time.monotonic()
    if seconds <= 0 or now - last_run.get(name, -float("inf")) < seconds:
        return
    last_run[name] = now
    try:
        task(ctx)
    except Exception:
        log.error("scheduled task failed", exc_info=True, extra={"task": name})


def _nudges(ctx: Any) -> None:
    from widgets.nudge_scan import run_nudges

    log.info("nudges sent", extra={"result": run_nudges(ctx.db, ctx.boards).as_dict()})


def _privacy_purge(ctx: Any) -> None:
    from identity.retention import purge

    with ctx.db.session() as session:
        report = purge(session, datetime.now(UTC), ctx.settings.retention_days)
    log.info("privacy purge", extra={"result": report.as_dict()})


def _lti_roster_sync(ctx: Any) -> None:
    from lti.roster import sync_all

    for line in sync_all(ctx.db, ctx.settings.secret_key, datetime.now(UTC), None):
        log.info("lti roster sync", extra={"result": line})


def _lti_grades_sync(ctx: Any) -> None:
    from lti.grades import deliver_due, queue_all
    from lti.keys import SigningKeyCache

    now = datetime.now(UTC)
    with ctx.db.session() as session:
        queued = queue_all(session, now)
    stats = deliver_due(ctx.db, ctx.settings, SigningKeyCache(ctx.settings.secret_key), now)
    log.info(
        "lti grades sync",
        extra={"queued": queued, "sent": stats.sent, "retrying": stats.retried, "dead": stats.dead},
    )


def _close_league_weeks(ctx: Any) -> None:
    from workers.leagues import close_weeks_now

    close_weeks_now(ctx)


@main.command(help="A whole Questline on SQLite with sample data, served on 127.0.0.1.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--database", default="questline-demo.db", show_default=True, type=click.Path())
@click.option("--events", default=400, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--no-serve", is_flag=True, help="Build the demo data and exit.")
def demo(port: int, database: str, events: int, no_serve: bool) -> None:
    from questline.demo import build_demo
    from questline.server import serve as run

    click.echo(f"Building the demo in {database} (SQLite, Redis in-process, jobs inline)...")
    built = build_demo(Path(database), events=events)
    ctx = built.app.extensions["questline"]
    entries, total, _ = ctx.boards.page(built.tenant_id, "tenant", limit=3)
    click.echo(f"Streamed {built.events} events through the pipeline; {total} players ranked.")
    click.echo("Top 3 (player id: XP): " + ", ".join(f"{pid}: {xp}" for _, pid, xp in entries))
    click.echo(f"Demo API key: {built.api_key}")
    if no_serve:
        return
    click.echo(f"Open http://127.0.0.1:{port}/  (Ctrl-C to stop)")
    run(built.app, host="127.0.0.1", port=port, workers=1, threads=4)


@main.group(help="Database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply Alembic migrations up to head.")
def db_upgrade() -> None:
    from questline.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    click.echo("database at head")


@main.group(help="Tenants and their API keys.")
def tenants() -> None:
    pass


@tenants.command("create", help="Create a tenant; prints its API key once.")
@click.argument("name")
@click.option("--timezone", default=None, help="IANA zone (default QUESTLINE_DEFAULT_TIMEZONE)")
def tenants_create(name: str, timezone: str | None) -> None:
    from engine.events import _valid_zone
    from questline.db import Database
    from questline.tenants import TenantExists, create_tenant

    settings = _settings()
    zone = timezone or settings.default_timezone
    if not _valid_zone(zone):
        raise click.BadParameter(f"{zone!r} is not an IANA time zone", param_hint="--timezone")
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            tenant, key = create_tenant(session, name, timezone=zone)
    except TenantExists:
        raise click.ClickException(f"a tenant named {name!r} already exists") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"tenant {tenant.id}: {tenant.name} ({zone})")
    click.echo(f"API key (shown once, store it now): {key}")


@main.command(help="Rebuild every Redis board from the PostgreSQL ledger; report the drift.")
@click.option("--tenant", "tenant_id", type=int, default=None)
def reconcile(tenant_id: int | None) -> None:
    from questline.reconcile import reconcile as run
    from workers.context import build_context

    ctx = build_context(_settings())
    report = run(ctx.db, ctx.boards, tenant_id)
    problems = False
    for drift in report:
        click.echo(
            f"tenant {drift.tenant_id}: {drift.boards} boards, {drift.entries} entries, "
            f"{drift.fixed} fixed"
        )
        if drift.aggregate_mismatches:
            problems = True
            click.echo(
                f"  players whose total disagrees with the ledger: {drift.aggregate_mismatches}",
                err=True,
            )
    click.echo(f"fixed {sum(d.fixed for d in report)} entries in {len(report)} tenants")
    _reconcile_leagues(ctx, tenant_id)  # issue 4: league cohorts and windowed boards
    if problems:
        sys.exit(1)


def _reconcile_leagues(ctx: Any, tenant_id: int | None) -> None:
    from questline.reconcile import reconcile_leagues

    joined = reconcile_leagues(ctx.db, ctx.boards, tenant_id)
    click.echo(f"leagues: current week rebuilt; {sum(joined.values())} players joined late")


@main.group(help="The inbox's dead-letter list.")
def events() -> None:
    pass


@events.command("failed", help="List events that ran out of attempts.")
@click.option("--tenant", "tenant_id", type=int, default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def events_failed(tenant_id: int | None, limit: int) -> None:
    from questline.db import Database
    from questline.models import InboxEvent

    database = Database(_settings().database_url)
    query = (
        select(
            InboxEvent.id,
            InboxEvent.tenant_id,
            InboxEvent.source,
            InboxEvent.event_key,
            InboxEvent.event_type,
            InboxEvent.attempts,
            InboxEvent.last_error,
        )
        .where(InboxEvent.status == "failed")
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    if tenant_id is not None:
        query = query.where(InboxEvent.tenant_id == tenant_id)
    with database.sessions() as session:
        rows = session.execute(query).all()
    if not rows:
        click.echo("no failed events")
        return
    for row_id, tid, source, key, kind, attempts, error in rows:
        click.echo(f"{row_id}\ttenant {tid}\t{source}:{key}\t{kind}\t{attempts} attempts\t{error}")


@events.command("retry", help="Put failed events back in the inbox and wake the workers.")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Retry every failed event.")
@click.option("--tenant", "tenant_id", type=int, default=None)
def events_retry(ids: tuple[int, ...], retry_all: bool, tenant_id: int | None) -> None:
    from questline.models import InboxEvent
    from workers.context import build_context

    if not ids and not retry_all:
        raise click.UsageError("give inbox ids, or --all")
    ctx = build_context(_settings())
    stmt = (
        update(InboxEvent)
        .where(InboxEvent.status == "failed")
        .values(status="pending", attempts=0, next_attempt_at=None)
    )
    if ids:
        stmt = stmt.where(InboxEvent.id.in_(ids))
    if tenant_id is not None:
        stmt = stmt.where(InboxEvent.tenant_id == tenant_id)
    with ctx.db.session() as session:
        count = session.execute(stmt).rowcount
    if count:
        ctx.dispatcher.wake()
    click.echo(f"{count} events queued again")


from questline.rules_cli import rules as _rules_group  # noqa: E402  (the rules engine's commands)

main.add_command(_rules_group)

main.add_command(__import__("webhooks.cli").cli.connections)  # issue 6: webhook connections
main.add_command(__import__("webhooks.cli").cli.webhooks)  # issue 6: outbound webhooks
main.add_command(__import__("lti.cli").cli.lti)  # issue 5: LTI keys and registrations
main.add_command(__import__("identity.cli").cli.sso)  # issue 8: OIDC SSO settings
main.add_command(__import__("identity.cli").cli.players)  # issue 8: export, erase, merge
main.add_command(__import__("identity.cli").cli.operators)  # issue 8: operator keys
main.add_command(__import__("identity.cli").cli.privacy)  # issue 8: retention purge
main.add_command(__import__("questline.league_cli").league_cli.leagues)  # issue 4: leagues
main.add_command(__import__("credentials.cli").cli.badges)  # issue 9: Open Badges keys

if __name__ == "__main__":  # pragma: no cover
    main()
