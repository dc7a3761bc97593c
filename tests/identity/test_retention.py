"""The retention policy: ``questline privacy purge`` empties old raw bodies of processed events,
deletes expired LTI launch records, and cleans what reached an erased player after erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from sqlalchemy import delete, select, update

from engine.events import parse_event
from identity import sso_sessions
from identity.models import SsoLogoutToken, SsoSession
from identity.retention import purge
from lti.models import LtiCourse, LtiCourseMember, LtiLaunch
from lti.registrations import register_platform
from questline.db import Database
from questline.ingest import IngestReport, store_events
from questline.models import InboxEvent, Player, Tenant
from tests.conftest import TenantHandle, event, new_tenant


def _post(client: Any, tenant: TenantHandle, *items: dict[str, Any]) -> None:
    response = client.post("/api/v1/events", json=list(items), headers=tenant.auth)
    assert response.status_code == 202, response.get_json()


def _raw(db: Database, tenant_id: int) -> dict[str, str]:
    with db.sessions() as session:
        rows = session.execute(
            select(InboxEvent.event_key, InboxEvent.raw).where(InboxEvent.tenant_id == tenant_id)
        ).all()
    return {key: raw for key, raw in rows}


def test_old_processed_raw_bodies_are_emptied(
    client: Any, tenant: TenantHandle, db: Database
) -> None:
    now = datetime.now(UTC)
    _post(client, tenant, event("old-1", actor="ola"), event("new-1", actor="ola"))
    pending = event("old-pending", actor="ola")
    with db.session() as session:
        store_events(session, tenant.id, [(parse_event(pending), pending)], now, IngestReport())
        session.execute(
            update(InboxEvent)
            .where(
                InboxEvent.tenant_id == tenant.id,
                InboxEvent.event_key.in_(["old-1", "old-pending"]),
            )
            .values(received_at=now - timedelta(days=400))
        )
    assert all(_raw(db, tenant.id).values())

    with db.session() as session:
        kept_forever = purge(session, now, 0)
    assert kept_forever.raw_bodies_emptied == 0 and all(_raw(db, tenant.id).values())

    with db.session() as session:
        report = purge(session, now, 365)
    assert report.raw_bodies_emptied == 1
    raw = _raw(db, tenant.id)
    assert raw["old-1"] == ""  # processed, past retention
    assert raw["new-1"] and json.loads(raw["new-1"])["id"] == "new-1"  # recent
    assert raw["old-pending"]  # not processed yet: kept until it is
    with db.sessions() as session:
        canonical = session.scalar(
            select(InboxEvent.canonical).where(InboxEvent.event_key == "old-1")
        )
    assert canonical["id"] == "old-1"  # the canonical form stays: replays read it
    # A second run finds nothing left to do.
    with db.session() as session:
        assert purge(session, now, 365).raw_bodies_emptied == 0


def _launch(
    session: Any, tenant_id: int, registration: int, player_id: int, expires: datetime, key: str
) -> None:
    session.add(
        LtiLaunch(
            id=key,
            tenant_id=tenant_id,
            registration_id=registration,
            player_id=player_id,
            message_type="LtiResourceLinkRequest",
            claims={"name": "Lana Launch", "email": "lana@acme.test"},
            expires_at=expires,
        )
    )


def test_expired_launches_go_and_erased_leftovers_are_cleaned(
    client: Any, tenant: TenantHandle, db: Database
) -> None:
    now = datetime.now(UTC)
    _post(
        client,
        tenant,
        {**event("l-1", actor="lana"), "actor": {"id": "lana", "email": "lana@acme.test"}},
    )
    lana = client.get("/api/v1/players?actor=lana", headers=tenant.auth).get_json()["players"][0]
    with db.session() as session:
        registration = register_platform(
            session,
            tenant_id=tenant.id,
            issuer="https://lms.acme.test",
            client_id="c1",
            deployment_ids=["d1"],
            auth_login_url="https://lms.acme.test/auth",
            auth_token_url="https://lms.acme.test/token",
            key_set_url="https://lms.acme.test/jwks",
        )
        course = LtiCourse(tenant_id=tenant.id, registration_id=registration.id, context_id="c-9")
        session.add(course)
        session.flush()
        reg = registration.id
        _launch(session, tenant.id, reg, lana["id"], now - timedelta(days=2), "expired-launch")
        _launch(session, tenant.id, reg, lana["id"], now + timedelta(hours=8), "live-launch")
    with db.session() as session:
        report = purge(session, now, 365)
    assert report.lti_launches_deleted == 1
    with db.sessions() as session:
        launches = select(LtiLaunch.id).where(LtiLaunch.tenant_id == tenant.id)
        assert session.scalars(launches).all() == ["live-launch"]

    assert client.delete(f"/api/v1/players/{lana['id']}", headers=tenant.auth).status_code == 200
    # What a worker in flight (or a roster sync) attached after the erasure committed: an event
    # with its original body and actor, and a course membership with the LMS user id.
    late = {**event("l-2", actor="lana"), "actor": {"id": "lana", "email": "lana@acme.test"}}
    with db.session() as session:
        report_in = IngestReport()
        store_events(session, tenant.id, [(parse_event(late), late)], now, report_in)
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_(report_in.inbox_ids))
            .values(player_id=lana["id"], status="applied")
        )
        session.add(
            LtiCourseMember(
                course_id=course.id,
                player_id=lana["id"],
                tenant_id=tenant.id,
                user_sub="lms-lana",
                roles=[],
            )
        )
    with db.session() as session:
        report = purge(session, now, 365)
    assert report.erased_leftovers == 2
    with db.sessions() as session:
        row = session.scalar(select(InboxEvent).where(InboxEvent.event_key == "l-2"))
        assert row is not None and row.raw == ""
        assert row.canonical["actor"] == {"id": f"erased:{lana['id']}"}
        members = select(LtiCourseMember).where(LtiCourseMember.tenant_id == tenant.id)
        assert session.scalars(members).all() == []
        player = session.get(Player, lana["id"])
        assert player is not None and player.email is None
    with db.session() as session:
        assert purge(session, now, 365).erased_leftovers == 0


def test_ended_sso_sessions_and_old_logout_jtis_go(tenant: TenantHandle, db: Database) -> None:
    now = datetime.now(UTC)
    with db.session() as session:
        player = Player(tenant_id=tenant.id, display_name="Sam Session")
        session.add(player)
        session.flush()
        ids = {}
        for name, started, ended in (
            ("live", now, None),
            ("ended-long-ago", now - timedelta(days=3), now - timedelta(days=2)),
            ("ended-just-now", now - timedelta(hours=1), now),
            ("expired-long-ago", now - timedelta(days=3), None),
        ):
            ids[name] = sso_sessions.start(
                session,
                tenant_id=tenant.id,
                player_id=player.id,
                issuer="https://idp.acme.test",
                sub="sam",
                sid=name,
                now=started,
                lifetime=timedelta(hours=12),
            )
            sso_sessions.end(session, ids[name] if ended else None, ended or now)
        assert sso_sessions.first_use_of(session, "https://idp.acme.test", "old", now)
        session.execute(update(SsoLogoutToken).values(seen_at=now - timedelta(days=2)))
        assert sso_sessions.first_use_of(session, "https://idp.acme.test", "new", now)
        assert not sso_sessions.first_use_of(session, "https://idp.acme.test", "new", now)
        report = purge(session, now, 365)
        assert report.sso_sessions_deleted == 2
        left = session.scalars(select(SsoSession.sid).where(SsoSession.tenant_id == tenant.id))
        assert sorted(left) == ["ended-just-now", "live"]
        assert sso_sessions.is_live(session, ids["live"], tenant.id, now)
        assert not sso_sessions.is_live(session, ids["ended-just-now"], tenant.id, now)
        assert not sso_sessions.is_live(session, ids["live"], tenant.id + 1, now)
        jtis = session.scalars(select(SsoLogoutToken.jti)).all()
        assert "old" not in jtis and "new" in jtis


def test_cli_purge_dry_run_changes_nothing(
    committed_db: Database, monkeypatch: Any, pg_url: str
) -> None:
    from questline.cli import main

    monkeypatch.setenv("QUESTLINE_DATABASE_URL", pg_url)
    monkeypatch.setenv("QUESTLINE_LOG_LEVEL", "WARNING")
    handle = new_tenant(committed_db)
    try:
        old = datetime.now(UTC) - timedelta(days=40)
        item = event("cli-old", actor="cleo")
        with committed_db.session() as session:
            report = IngestReport()
            store_events(session, handle.id, [(parse_event(item), item)], old, report)
            session.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_(report.inbox_ids))
                .values(status="applied", received_at=old)
            )
        runner = CliRunner()
        dry = runner.invoke(main, ["privacy", "purge", "--days", "30", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert json.loads(dry.output)["raw_bodies_emptied"] >= 1
        assert _raw(committed_db, handle.id)["cli-old"]
        real = runner.invoke(main, ["privacy", "purge", "--days", "30"])
        assert real.exit_code == 0 and json.loads(real.output)["dry_run"] is False
        assert _raw(committed_db, handle.id)["cli-old"] == ""
        bad = runner.invoke(main, ["privacy", "purge", "--days", "-1"])
        assert bad.exit_code != 0 and "-1" in bad.output
    finally:
        with committed_db.session() as session:
            session.execute(delete(Tenant).where(Tenant.id == handle.id))
