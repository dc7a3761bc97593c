"""The ``questline`` CLI on the embedded default (SQLite, Redis in-process, jobs inline)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from questline.cli import main
from questline.db import Database
from questline.models import InboxEvent, Player


@pytest.fixture
def sqlite_env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    monkeypatch.setenv("QUESTLINE_DATABASE_URL", url)
    monkeypatch.delenv("QUESTLINE_REDIS_URL", raising=False)
    monkeypatch.setenv("QUESTLINE_REDIS_PREFIX", f"cli-{tmp_path.name}")
    monkeypatch.setenv("QUESTLINE_LOG_LEVEL", "WARNING")
    return url


def run(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_every_command_has_help():
    for args in (
        [],
        ["serve"],
        ["worker"],
        ["scheduler"],
        ["demo"],
        ["db", "upgrade"],
        ["tenants", "create"],
        ["reconcile"],
        ["events", "failed"],
        ["events", "retry"],
    ):
        result = run(*args, "--help")
        assert result.exit_code == 0, args
        assert "Usage:" in result.output


def test_db_upgrade_then_tenant_key_printed_once_and_only_hash_stored(sqlite_env):
    assert run("db", "upgrade").output.strip() == "database at head"
    result = run("tenants", "create", "Acme", "--timezone", "Europe/Paris")
    assert result.exit_code == 0
    key = result.output.split("store it now): ")[1].strip()
    assert key.startswith("ql_")
    from questline.models import ApiKey

    with Database(sqlite_env).sessions() as session:
        stored = session.scalars(select(ApiKey.key_hash)).all()
    assert key not in stored and len(stored) == 1
    again = run("tenants", "create", "Acme")
    assert again.exit_code == 1 and "already exists" in again.output
    bad = run("tenants", "create", "Other", "--timezone", "Mars/Olympus")
    assert bad.exit_code == 2 and "IANA" in bad.output


def test_bad_setting_is_a_clear_error(sqlite_env, monkeypatch):
    monkeypatch.setenv("QUESTLINE_MAX_BATCH", "lots")
    result = run("db", "upgrade")
    assert result.exit_code == 1
    assert "QUESTLINE_MAX_BATCH='lots'" in result.output


def test_worker_refuses_to_start_without_redis(sqlite_env):
    result = run("worker", "--burst")
    assert result.exit_code == 1 and "QUESTLINE_REDIS_URL" in result.output


def test_failed_events_are_listed_and_retried(sqlite_env):
    run("db", "upgrade")
    key = run("tenants", "create", "Acme").output.split("store it now): ")[1].strip()
    from questline import create_app
    from questline.settings import load_settings

    app = create_app(load_settings())
    client = app.test_client()
    body = {
        "id": "e1",
        "type": "lesson.completed",
        "actor": {"id": "ann"},
        "occurred_at": "2026-11-20T10:00:00Z",
    }
    assert (
        client.post(
            "/api/v1/events", json=body, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 202
    )
    database = Database(sqlite_env)
    with database.session() as session:  # pretend it failed for good
        session.execute(
            update(InboxEvent).values(status="failed", attempts=5, last_error="RuntimeError: boom")
        )
        session.execute(update(Player).values(xp=0))
    listed = run("events", "failed")
    assert "tenant 1\tapi:e1\tlesson.completed\t5 attempts\tRuntimeError: boom" in listed.output
    assert run("events", "retry").exit_code == 2  # needs ids or --all
    assert run("events", "retry", "--all").output.strip() == "1 events queued again"
    assert run("events", "failed").output.strip() == "no failed events"
    with database.sessions() as session:
        assert session.scalar(select(InboxEvent.status)) == "applied"


def test_demo_builds_through_the_real_pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("demo", "--no-serve", "--events", "300")
    assert result.exit_code == 0, result.output
    assert "Streamed 300 events through the pipeline; 24 players ranked." in result.output
    assert "Demo API key: ql_" in result.output
    database = Database(f"sqlite:///{tmp_path / 'questline-demo.db'}")
    with database.sessions() as session:
        statuses = set(session.scalars(select(InboxEvent.status)))
        total_xp = sum(session.scalars(select(Player.xp)))
    assert statuses == {"applied"}
    assert total_xp > 0


def test_reconcile_reports_drift(sqlite_env):
    run("db", "upgrade")
    run("tenants", "create", "Acme")
    result = run("reconcile")
    assert result.exit_code == 0
    assert "tenant 1: 1 boards, 0 entries, 0 fixed" in result.output


def test_scheduler_once_reports_due_rows(sqlite_env):
    run("db", "upgrade")
    result = run("scheduler", "--once")
    assert result.exit_code == 0 and result.output.strip() == "0 inbox rows due"


def test_json_logs(capsys):
    import logging

    from questline.logs import configure_logging

    configure_logging("INFO", True)
    logging.getLogger("questline.test").info("hello", extra={"tenant_id": 7, "event_id": "e1"})
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "hello" and line["tenant_id"] == 7 and line["event_id"] == "e1"
    assert line["level"] == "info"


def test_scheduler_runs_the_lti_syncs_on_their_own_intervals(sqlite_env, monkeypatch):
    """NRPS roster and AGS grade syncs run from `questline scheduler`, each at most once per
    its interval, and a failing one is logged without stopping the scheduler."""
    import questline.cli as cli

    calls: list[str] = []
    monkeypatch.setattr(cli, "_lti_roster_sync", lambda ctx: calls.append("roster"))
    monkeypatch.setattr(cli, "_lti_grades_sync", lambda ctx: calls.append("grades"))
    run("db", "upgrade")
    assert run("scheduler", "--once").exit_code == 0
    assert calls == ["roster", "grades"]

    last: dict[str, float] = {}
    cli._every(last, "x", 3600, lambda ctx: calls.append("x"), None)
    cli._every(last, "x", 3600, lambda ctx: calls.append("x"), None)  # not due yet
    cli._every(last, "off", 0, lambda ctx: calls.append("off"), None)  # 0 = never

    def boom(ctx):
        raise RuntimeError("LMS unreachable")

    cli._every(last, "boom", 60, boom, None)  # logged, not raised
    assert calls == ["roster", "grades", "x"]
