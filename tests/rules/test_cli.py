"""``questline rules`` on the embedded SQLite database (which also proves migration 0002 runs on
SQLite): check prints every error with its path, load stores versions, activate rolls back."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from questline.cli import main
from tests.rules.helpers import EXAMPLES


@pytest.fixture
def sqlite_env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    monkeypatch.setenv("QUESTLINE_DATABASE_URL", url)
    monkeypatch.delenv("QUESTLINE_REDIS_URL", raising=False)
    monkeypatch.setenv("QUESTLINE_REDIS_PREFIX", f"rules-{tmp_path.name}")
    monkeypatch.setenv("QUESTLINE_LOG_LEVEL", "WARNING")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(main, ["tenants", "create", "Acme"])
    assert created.exit_code == 0, created.output
    return url


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help():
    for args in (["rules"], ["rules", "check"], ["rules", "load"], ["rules", "activate"]):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_check_prints_every_error_with_its_path_and_fails():
    path = str(EXAMPLES / "broken.yaml")
    result = run("rules", "check", path)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == f"{path}: xp[0].id: must be 1-100 lowercase letters, digits or . _ -"
    assert f"{path}: levels.table: thresholds must strictly increase" in lines
    assert lines[-1] == "7 error(s)"


def test_check_good_files_and_course_scope(tmp_path):
    assert run("rules", "check", str(EXAMPLES / "tenant.yaml")).exit_code == 0
    ok = run("rules", "check", str(EXAMPLES / "course-math-101.yaml"), "--course", "math-101")
    assert ok.exit_code == 0 and "ok (3 XP rules, 1 multipliers, 0 badges)" in ok.output
    levels = tmp_path / "c.json"
    levels.write_text(json.dumps({"levels": {"table": [0, 5]}}))
    refused = run("rules", "check", str(levels), "--course", "x")
    assert refused.exit_code == 1
    assert "levels: only the tenant rule set defines levels" in refused.output
    missing = run("rules", "check", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 1 and "cannot read" in missing.output


def test_yaml_on_key_is_not_a_boolean(tmp_path):
    # YAML 1.1 would read `on:` as True; the loader must keep it a key.
    path = tmp_path / "r.yaml"
    path.write_text("xp:\n  - id: a\n    on: lesson.completed\n    points: 1\n")
    assert run("rules", "check", str(path)).exit_code == 0


def test_load_show_and_activate(sqlite_env):
    tenant_yaml = str(EXAMPLES / "tenant.yaml")
    first = run("rules", "load", tenant_yaml, "--tenant", "Acme")
    assert first.output.strip() == "tenant rules version 1 active"
    second = run("rules", "load", str(EXAMPLES / "v1-compatible.json"), "--tenant", "1")
    assert second.output.strip() == "tenant rules version 2 active"
    course = run(
        "rules",
        "load",
        str(EXAMPLES / "course-math-101.yaml"),
        "--tenant",
        "Acme",
        "--course",
        "math-101",
    )
    assert course.output.strip() == "course math-101 rules version 1 active"

    shown = json.loads(run("rules", "show", "--tenant", "Acme").output)
    assert [(s["course"], s["version"]) for s in shown] == [(None, 2), ("math-101", 1)]

    assert run("rules", "activate", "1", "--tenant", "Acme").exit_code == 0
    versions = json.loads(run("rules", "show", "--tenant", "Acme", "--versions").output)
    assert [(v["version"], v["active"]) for v in versions] == [(2, False), (1, True)]

    bad = run("rules", "load", str(EXAMPLES / "broken.yaml"), "--tenant", "Acme")
    assert bad.exit_code == 1 and "xp[0].id" in bad.output
    unknown = CliRunner().invoke(main, ["rules", "load", tenant_yaml, "--tenant", "Nobody"])
    assert unknown.exit_code == 1 and "no tenant 'Nobody'" in unknown.output
    missing = CliRunner().invoke(main, ["rules", "activate", "7", "--tenant", "Acme"])
    assert missing.exit_code == 1 and "no version 7" in missing.output
