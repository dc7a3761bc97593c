"""Nudges from the scheduler: streak at risk, a badge one step away, the league's demotion zone;
each announced once on the outbound webhooks; at most one per learner per local day, also when
the scheduler runs twice or another run got there first; the learner's opt-out respected.
Real PostgreSQL and Redis, events through the real ingest path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from questline.db import Database
from questline.leaderboards import Leaderboards
from questline.league_models import LeagueCohort, LeagueMembership
from tests.conftest import TenantHandle, event
from tests.widgets.helpers import ingest, learners
from tests.widgets.test_instructor import example_rules
from webhooks.models import WebhookOutbox
from webhooks.outbound import subscribe
from widgets.models import NudgeSent
from widgets.nudge_scan import NudgeStats, _send, nudge_tenant, run_nudges
from widgets.nudges import set_nudges_off

NUDGES = ["streak.at_risk", "badge.near", "league.at_risk"]
EVENING = datetime(2026, 11, 21, 20, 30, tzinfo=UTC)  # the learners' day after 2026-11-20


def hooked(db: Database, tenant: TenantHandle) -> None:
    with db.session() as session:
        subscribe(session, tenant.id, "https://hooks.example.org/q", NUDGES)


def run(db: Database, boards: Leaderboards, tenant: TenantHandle, now: datetime) -> NudgeStats:
    with db.session() as session:
        return nudge_tenant(session, boards, tenant.id, now=now)


def outbox(db: Database, tenant: TenantHandle) -> list[tuple[str, dict[str, object]]]:
    with db.sessions() as session:
        rows = session.execute(
            select(WebhookOutbox.event_type, WebhookOutbox.payload)
            .where(WebhookOutbox.tenant_id == tenant.id)
            .order_by(WebhookOutbox.id)
        )
        return [(t, dict(p)) for t, p in rows]


def test_streak_at_risk_is_sent_once_even_when_the_scheduler_runs_twice(
    client: FlaskClient, db: Database, tenant: TenantHandle, app: object
) -> None:
    hooked(db, tenant)
    ids = learners(client, tenant, {"ada": 1, "bo": 1})  # both active on 2026-11-20
    boards = client.application.extensions["questline"].boards
    first = run(db, boards, tenant, EVENING)
    assert first.sent == {"streak.at_risk": 2} and first.outbox_rows == 2
    again = run(db, boards, tenant, EVENING.replace(hour=22))
    assert dict(again.sent) == {} and again.already == 2 and again.outbox_rows == 0
    sent = outbox(db, tenant)
    assert [t for t, _ in sent] == ["streak.at_risk", "streak.at_risk"]
    ada = next(p for _, p in sent if p["player_id"] == ids["ada"])
    assert ada == {
        "player_id": ids["ada"],
        "day": "2026-11-21",
        "name": "Ada",
        "days": 1,
        "hours_left": 3,
    }
    # Earlier in the day the streak is not yet at risk: nothing to send.
    assert dict(run(db, boards, tenant, EVENING.replace(day=22, hour=9)).sent) == {}


def test_a_row_another_run_inserted_first_is_not_announced_again(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    """The race: a second scheduler found the same learner, but the first committed its row
    between the finding and the sending; ON CONFLICT skips it and nothing is announced."""
    hooked(db, tenant)
    ada = learners(client, tenant, {"ada": 1})["ada"]
    payload = {"player_id": ada, "day": "2026-11-21", "name": "Ada", "days": 1, "hours_left": 3}
    stats = NudgeStats()
    with db.session() as session:
        session.add(
            NudgeSent(
                tenant_id=tenant.id, player_id=ada, day="2026-11-21", kind="badge.near", detail={}
            )
        )
        session.flush()
        _send(session, tenant.id, {ada: ("streak.at_risk", payload)}, stats, now=EVENING)
    assert dict(stats.sent) == {} and stats.already == 1 and outbox(db, tenant) == []


def test_opted_out_learners_get_no_nudge(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    hooked(db, tenant)
    ids = learners(client, tenant, {"ada": 1, "bo": 1})
    with db.session() as session:
        set_nudges_off(session, tenant.id, ids["ada"], True)
    boards = client.application.extensions["questline"].boards
    stats = run(db, boards, tenant, EVENING)
    assert stats.sent == {"streak.at_risk": 1} and stats.opted_out == 1
    assert [p["player_id"] for _, p in outbox(db, tenant)] == [ids["bo"]]
    with db.sessions() as session:
        rows = session.scalars(select(NudgeSent.player_id).where(NudgeSent.tenant_id == tenant.id))
        assert list(rows) == [ids["bo"]]


def test_badge_one_step_away(client: FlaskClient, db: Database, tenant: TenantHandle) -> None:
    example_rules(db, tenant)
    hooked(db, tenant)
    ada = learners(client, tenant, {"ada": 9})["ada"]  # Bookworm needs 10 lessons
    boards = client.application.extensions["questline"].boards
    noon = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # today counts: no streak at risk
    assert run(db, boards, tenant, noon).sent == {"badge.near": 1}
    [(kind, payload)] = outbox(db, tenant)
    assert kind == "badge.near"
    assert payload == {"player_id": ada, "day": "2026-11-20", "badge_id": "bookworm",
                       "badge": "Bookworm"}  # fmt: skip


def test_league_demotion_zone(client: FlaskClient, db: Database, tenant: TenantHandle) -> None:
    hooked(db, tenant)
    on = client.put(
        "/api/v1/leagues/config",
        json={"cohort_size": 10, "promote": 1, "demote": 2},
        headers=tenant.auth,
    )
    assert on.status_code == 200, on.get_json()
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    counts = {"ada": 4, "bo": 3, "cy": 2, "dee": 1}
    ingest(
        client,
        tenant,
        [event(f"{a}-{i}", actor=a, at=stamp) for a, n in counts.items() for i in range(n)],
    )
    boards = client.application.extensions["questline"].boards
    # The lowest tier has no demotion zone: seat this cohort one tier up, as if promoted.
    with db.session() as session:
        session.execute(
            update(LeagueMembership).where(LeagueMembership.tenant_id == tenant.id).values(tier=1)
        )
        session.execute(
            update(LeagueCohort).where(LeagueCohort.tenant_id == tenant.id).values(tier=1)
        )
    stats = run(db, boards, tenant, now)
    assert stats.sent == {"league.at_risk": 2}, stats.as_dict()
    sent = [p for _, p in outbox(db, tenant)]
    ranks = sorted((p["rank"], p["cohort_size"], p["xp"]) for p in sent)
    assert ranks == [(3, 4, 20), (4, 4, 10)]
    assert all(t == "league.at_risk" for t, _ in outbox(db, tenant))


def test_run_nudges_covers_every_tenant(
    client: FlaskClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    learners(client, tenant, {"ada": 1})
    ingest(client, other_tenant, [event("o1", actor="olga", at="2026-11-20T10:00:00Z")])
    boards = client.application.extensions["questline"].boards
    stats = run_nudges(db, boards, now=EVENING)
    assert stats.sent["streak.at_risk"] >= 2
    with db.sessions() as session:
        tenants = set(
            session.scalars(
                select(NudgeSent.tenant_id).where(
                    NudgeSent.tenant_id.in_([tenant.id, other_tenant.id])
                )
            )
        )
    assert tenants == {tenant.id, other_tenant.id}


def test_the_schedulers_duty_twice_sends_once(
    client: FlaskClient, db: Database, tenant: TenantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``questline scheduler`` calls ``_nudges`` each interval; two calls the same evening (or
    two schedulers) leave one row and one outbox message per learner."""
    import questline.cli as cli
    import widgets.nudge_scan as scan

    hooked(db, tenant)
    learners(client, tenant, {"ada": 1})
    real = scan.run_nudges
    monkeypatch.setattr(scan, "run_nudges", lambda d, b: real(d, b, now=EVENING))
    context = client.application.extensions["questline"]
    cli._nudges(context)
    cli._nudges(context)
    assert [t for t, _ in outbox(db, tenant)] == ["streak.at_risk"]
