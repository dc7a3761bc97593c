"""Identity mapping per connection: a webhook's learner and an LTI launch's user are one player.

With ``--lti-registration N`` a Moodle user id becomes the actor id an LTI launch from
registration N gives the same ``sub`` (Moodle's LTI 1.3 ``sub`` is its user id). Whichever path
arrives first creates the identity; the other finds it, so nothing is merged after the fact.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine.events import Actor
from identity.players import resolve_players
from lti.models import LtiRegistration
from lti.visits import actor_id
from questline.db import Database
from questline.models import Player, PlayerIdentity
from tests.conftest import TenantHandle
from tests.webhooks.helpers import connect, fixture_json, inbox
from webhooks.connections import ConnectionError_


def _registration(db: Database, tenant_id: int, issuer: str = "https://moodle.example") -> int:
    with db.session() as session:
        reg = LtiRegistration(
            tenant_id=tenant_id,
            issuer=issuer,
            client_id=f"client-{tenant_id}",
            auth_login_url=f"{issuer}/mod/lti/auth.php",
            auth_token_url=f"{issuer}/mod/lti/token.php",
            key_set_url=f"{issuer}/mod/lti/certs.php",
        )
        session.add(reg)
        session.flush()
        return reg.id


def _launch(db: Database, tenant_id: int, registration_id: int, sub: str) -> int:
    """What an LTI launch does to find its player (lti.visits)."""
    actor = Actor(id=actor_id(registration_id, sub), name="Ada Lovelace")
    with db.session() as session:
        return resolve_players(session, tenant_id, [actor])[("actor", actor.id)]


def _player_of(db: Database, tenant_id: int, actor: str) -> int | None:
    with db.sessions() as session:
        return session.scalar(
            select(PlayerIdentity.player_id).where(
                PlayerIdentity.tenant_id == tenant_id,
                PlayerIdentity.kind == "actor",
                PlayerIdentity.value == actor,
            )
        )


def _players(db: Database, tenant_id: int) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).where(Player.tenant_id == tenant_id)) or 0)


def _moodle(client: FlaskClient, public_id: str, secret: str, user: str, when: int) -> None:
    data = fixture_json("moodle/local_webhooks.course_viewed.json")
    body = {**data, "token": secret, "userid": user, "timecreated": when}
    response = client.post(f"/webhooks/{public_id}", json=body)
    assert response.status_code == 200 and response.json["accepted"] == 1


def test_moodle_webhook_after_a_launch_credits_the_launched_player(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    reg = _registration(db, tenant.id)
    launched = _launch(db, tenant.id, reg, "2")
    public_id, secret = connect(db, tenant.id, "moodle", lti_registration=reg)
    _moodle(client, public_id, secret, "2", 1527055000)
    (row,) = inbox(db, tenant.id)
    assert row.canonical["actor"]["id"] == f"lti:{reg}:2"
    assert row.status == "applied"
    assert _player_of(db, tenant.id, f"lti:{reg}:2") == launched
    assert _players(db, tenant.id) == 1


def test_webhook_first_then_the_launch_finds_the_same_player(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    reg = _registration(db, tenant.id)
    public_id, secret = connect(db, tenant.id, "moodle", lti_registration=reg)
    _moodle(client, public_id, secret, "7", 1527055000)
    held = _player_of(db, tenant.id, f"lti:{reg}:7")
    assert held is not None  # the identity waits for the launch
    assert _launch(db, tenant.id, reg, "7") == held
    assert _players(db, tenant.id) == 1


def test_without_the_option_a_webhook_user_is_its_own_player(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    reg = _registration(db, tenant.id)
    launched = _launch(db, tenant.id, reg, "2")
    public_id, secret = connect(db, tenant.id, "moodle")
    _moodle(client, public_id, secret, "2", 1527055000)
    assert _player_of(db, tenant.id, f"{public_id}:2") not in (None, launched)


def test_lti_registration_is_checked(
    db: Database, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    theirs = _registration(db, other_tenant.id, "https://other.example")
    with pytest.raises(ConnectionError_, match="no LTI registration"):
        connect(db, tenant.id, "moodle", lti_registration=theirs)  # never across tenants
    with pytest.raises(ConnectionError_, match="no LTI registration"):
        connect(db, tenant.id, "moodle", lti_registration=999_999)
    mine = _registration(db, tenant.id)
    with pytest.raises(ConnectionError_, match="only for"):
        connect(db, tenant.id, "hubspot", lti_registration=mine)
    with pytest.raises(ConnectionError_, match="exclude each other"):
        connect(db, tenant.id, "moodle", lti_registration=mine, namespace="lms")
