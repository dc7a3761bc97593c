"""``league.finished`` on the outbound webhooks: the close writes one outbox row per member and
subscription in its history transaction; the deliverer posts each signed, exactly once even when
the close runs again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.leagues import Result as EngineResult
from questline.db import Database
from questline.league_models import League, LeagueResult, LeagueWeek
from questline.league_repo import league_config
from questline.league_rewards import finished_payload, outbound_key
from tests.leagues.test_close import GRACE, seed_week, store
from tests.webhooks.helpers import Receiver, serve_receiver, verify_standard
from webhooks.models import WebhookOutbox
from webhooks.outbound import deliver_due, subscribe
from workers.leagues import close_due_weeks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as running:
        yield running


def test_each_member_gets_one_signed_league_finished_delivery(
    db: Database, redis_client: Any, receiver: Receiver
) -> None:
    s = seed_week(db, redis_client)
    with db.session() as session:
        _, secret = subscribe(  # the receiver is on loopback: allowed explicitly
            session, s["tenant"], receiver.url, ["league.finished"], allow_private=True
        )
        subscribe(session, s["tenant"], "https://badges.example/h", ["badge.awarded"])
    after = s["week"].end + timedelta(hours=1)
    report = close_due_weeks(db, store(redis_client), after, GRACE)
    assert report.messages == 5
    # Run again, and even force the week open again: no new message.
    assert close_due_weeks(db, store(redis_client), after, GRACE).messages == 0
    with db.session() as session:
        week = session.scalar(select(LeagueWeek).where(LeagueWeek.league_id == s["league"]))
        assert week is not None
        week.status = "open"
    assert close_due_weeks(db, store(redis_client), after, GRACE).messages == 0
    with db.sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(WebhookOutbox)
                .where(WebhookOutbox.tenant_id == s["tenant"])
            )
            == 5
        )
        league = session.get(League, s["league"])
        assert league is not None
        config = league_config(league)
        expected = {
            r.player_id: finished_payload(
                league,
                config,
                r.week,
                r.cohort_id,
                EngineResult(r.player_id, r.rank, r.xp, r.zone, r.outcome, r.tier, r.next_tier),  # type: ignore[arg-type]
                r.cohort_members,
            )
            for r in session.scalars(
                select(LeagueResult).where(LeagueResult.league_id == s["league"])
            )
        }
        rows = session.execute(
            select(WebhookOutbox.subscription_id, WebhookOutbox.key, WebhookOutbox.message_id)
        ).all()
        keys = {key for _, key, _ in rows}
    # message ids as webhooks.outbound.record_many makes them (the SQLite path uses it)
    for sub_id, key, message_id in rows:
        assert message_id == "msg_" + hashlib.sha256(f"{sub_id}/{key}".encode()).hexdigest()[:32]

    assert keys >= {outbound_key(s["league"], s["week"].key, p) for p in s["players"]}
    stats = deliver_due(db, after, allow_private=True)
    later = deliver_due(db, after + timedelta(hours=1), allow_private=True)
    assert stats.delivered == 5 and later.delivered == 0
    assert len(receiver.requests) == 5
    got: dict[int, dict[str, Any]] = {}
    for headers, body in receiver.requests:
        assert verify_standard(secret, headers, body)
        message = json.loads(body)
        assert message["type"] == "league.finished"
        got[message["data"]["player_id"]] = message["data"]
    assert got == expected  # the SQL payload is the Python one
    top = got[s["players"][-1]]
    assert (top["rank"], top["outcome"], top["tier"], top["next_tier"]) == (
        1,
        "promoted",
        "Silver",
        "Gold",
    )
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 5
