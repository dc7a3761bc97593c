"""``rules simulate`` and ``rules load --retro`` over stored history on PostgreSQL: simulate
writes nothing and reports XP, level and badge changes; retro re-scores idempotently, awards
badges, keeps the ledger equal to the totals and is audit-logged."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from sqlalchemy import delete, func, select

from questline.cli import main
from questline.models import Player, PlayerBadge, RuleAudit, Tenant, XpLedger
from questline.rules_replay import retro_apply, simulate
from tests.conftest import event, make_context, new_tenant
from tests.rules.helpers import post
from workers.rulesets import store_version

V1: dict[str, Any] = {
    "xp": [{"id": "lesson", "on": "lesson.completed", "points": 10}],
    "levels": {"table": [0, 25, 100]},
}
V2: dict[str, Any] = {
    "xp": [{"id": "lesson", "on": "lesson.completed", "points": 15}],
    "levels": {"table": [0, 25, 100]},
    "badges": [{"id": "twice", "name": "Twice", "criteria": {"count": 2}}],
}


def history(client: Any, db: Any, tenant: Any) -> None:
    with db.session() as session:
        store_version(session, tenant.id, V1, course=None, actor="test")
    post(
        client,
        tenant,
        *(event(f"a{i}", actor="ann", at=f"2026-11-2{i}T10:00:00Z") for i in range(3)),
        event("b0", actor="bob", at="2026-11-20T10:00:00Z"),
    )


def snapshot(db: Any, tenant: Any) -> tuple[Any, ...]:
    with db.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(XpLedger)),
            session.scalar(select(func.count()).select_from(PlayerBadge)),
            sorted(session.execute(select(Player.id, Player.xp, Player.level)).all()),
        )


def test_simulate_reports_changes_and_writes_nothing(client, db, ctx, tenant):
    history(client, db, tenant)
    before = snapshot(db, tenant)
    ticks: list[int] = []
    with db.sessions() as session:
        report = simulate(session, tenant.id, V2, course=None, since=None, progress=ticks.append)
    assert snapshot(db, tenant) == before
    assert (report.events, report.players, sum(ticks)) == (4, 2, 4)
    lines = report.lines()
    ann = next(line for line in lines if "(Ann)" in line)
    assert "XP 30 -> 45 (+15)" in ann and "level 2 -> 2" not in ann
    assert "badges granted: twice (Twice)" in ann
    bob = next(line for line in lines if "(Bob)" in line)
    assert bob.endswith("XP 10 -> 15 (+5)")
    assert lines[-1] == (
        "4 events of 2 players replayed; 2 players would change; XP +20 in total; "
        "1 badges granted, 0 no longer earned, 0 level changes"
    )


def test_simulate_since_limits_the_window(client, db, ctx, tenant):
    history(client, db, tenant)
    from datetime import UTC, datetime

    with db.sessions() as session:
        report = simulate(
            session, tenant.id, V2, course=None, since=datetime(2026, 11, 22, tzinfo=UTC)
        )
    assert (report.events, report.players) == (1, 1)


def test_retro_rescores_idempotently_and_is_audited(client, db, ctx, tenant):
    history(client, db, tenant)
    with db.session() as session:
        version = store_version(session, tenant.id, V2, course=None, actor="test")
        first = retro_apply(session, tenant.id, version=version, course=None, actor="test")
    assert (first.events, first.xp_rows, first.xp_delta, first.badges) == (4, 4, 20, 1)
    with db.session() as session:
        second = retro_apply(session, tenant.id, version=version, course=None, actor="test")
    assert (second.xp_rows, second.xp_delta, second.badges) == (0, 0, 0)

    with db.sessions() as session:
        totals = dict(
            session.execute(
                select(Player.display_name, Player.xp).where(Player.tenant_id == tenant.id)
            ).all()
        )
        assert totals == {"Ann": 45, "Bob": 15}
        sums = dict(
            session.execute(
                select(Player.display_name, func.sum(XpLedger.amount))
                .join(Player, Player.id == XpLedger.player_id)
                .group_by(Player.display_name)
            ).all()
        )
        assert sums == totals
        text = session.scalar(
            select(XpLedger.explanation).where(XpLedger.idempotency_key.like("retro|%")).limit(1)
        )
        assert text.startswith(f"re-scored by rules v{version}: 10 -> 15 XP (+5); rule `lesson`")
        (badge,) = session.scalars(select(PlayerBadge)).all()
        assert badge.badge_id == "twice" and badge.explanation.startswith("retroactive: badge")
        audits = session.execute(
            select(RuleAudit.action, RuleAudit.detail).where(RuleAudit.action == "retro")
        ).all()
        assert [a[1]["xp_rows"] for a in audits] == [4, 0]

    # Going back down re-scores down, again only once.
    with db.session() as session:
        v3 = store_version(session, tenant.id, V1, course=None, actor="test")
        down = retro_apply(session, tenant.id, version=v3, course=None, actor="test")
        again = retro_apply(session, tenant.id, version=v3, course=None, actor="test")
    assert (down.xp_delta, again.xp_rows) == (-20, 0)


def test_cli_simulate_and_retro(committed_db, settings, redis_client, monkeypatch, tmp_path):
    """The commands end to end on committed PostgreSQL data."""
    from questline import create_app

    tenant = new_tenant(committed_db)
    try:
        context = make_context(settings, committed_db, redis_client)
        client = create_app(settings, context=context).test_client()
        history(client, committed_db, tenant)
        monkeypatch.setenv("QUESTLINE_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("QUESTLINE_REDIS_PREFIX", settings.redis_prefix)
        candidate = tmp_path / "v2.yaml"
        candidate.write_text(
            "xp:\n  - {id: lesson, on: lesson.completed, points: 15}\n"
            "levels: {table: [0, 25, 100]}\n"
        )
        runner = CliRunner()
        before = snapshot(committed_db, tenant)
        out = runner.invoke(
            main,
            ["rules", "simulate", str(candidate), "--tenant", str(tenant.id), "--since", "all"],
        )
        assert out.exit_code == 0, out.output
        assert "XP 30 -> 45 (+15)" in out.output and "2 players would change" in out.output
        assert snapshot(committed_db, tenant) == before
        bad = runner.invoke(
            main, ["rules", "simulate", str(candidate), "--tenant", "1", "--since", "x"]
        )
        assert bad.exit_code == 2 and "30d" in bad.output

        load = ["rules", "load", str(candidate), "--tenant", str(tenant.id), "--retro"]
        out = runner.invoke(main, load)
        assert out.exit_code == 0, out.output
        assert "retro: 4 events of 2 players replayed; 4 XP adjustments (+20 XP)" in out.output
        out = runner.invoke(main, load)
        assert "0 XP adjustments (+0 XP)" in out.output
    finally:
        with committed_db.session() as session:
            session.execute(delete(Tenant).where(Tenant.id == tenant.id))


def test_simulate_a_course_rule_set(client, db, ctx, tenant):
    history(client, db, tenant)
    post(client, tenant, event("c2", actor="bob", course="other", at="2026-11-21T10:00:00Z"))
    course_rules = {"xp": [{"id": "lesson", "on": "lesson.completed", "points": 12}]}
    with db.sessions() as session:
        report = simulate(session, tenant.id, course_rules, course="course-1", since=None)
    # Only course-1's events are replayed; its rule replaces the tenant's rule of the same id.
    assert (report.events, report.players) == (4, 2)
    assert [line for line in report.lines() if "(Ann)" in line] == [
        f"player {report.changes[0].player_id} (Ann): XP 30 -> 36 (+6)"
    ]
