"""A Canvas user is one player whether Live Events or the LTI launch comes first.

Canvas's LTI ``sub`` is opaque and its Live Events name users by Canvas global id; a launch whose
custom claim carries ``canvas_user_id`` (Canvas substitutes ``$Canvas.user.globalId``) joins
them (lti/canvas_link.py). Launches come from the independent ``lti1p3platform`` peer; the Live
Event is the published Canvas fixture, posted to a real webhook connection of the same tool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from identity.models import PlayerMerge
from questline.models import Player, PlayerIdentity
from tests.lti.conftest import LtiWorld
from tests.webhooks.helpers import fixture_json
from webhooks.connections import create_connection

CANVAS_USER = "21070000000000047"  # the learner of canvas/raw/submission_updated.json


def _canvas_event(world: LtiWorld) -> None:
    """Post the published submission_updated Live Event through a Canvas connection."""
    with world.db.session() as session:
        conn, secret = create_connection(
            session, world.tenant_id, "canvas", lti_registration=world.registration_id
        )
        public_id = conn.public_id
    body: dict[str, Any] = fixture_json("canvas/raw/submission_updated.json")
    client = world.app.test_client()
    response = client.post(
        f"/webhooks/{public_id}", json=body, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200 and response.json["accepted"] == 1, response.json


def _holders(world: LtiWorld) -> dict[str, int]:
    with world.db.sessions() as session:
        rows = session.execute(
            select(PlayerIdentity.value, PlayerIdentity.player_id).where(
                PlayerIdentity.tenant_id == world.tenant_id
            )
        )
        return {value: pid for value, pid in rows}


def _live_players(world: LtiWorld) -> list[Player]:
    with world.db.sessions() as session:
        merged = select(PlayerMerge.source_player_id).where(
            PlayerMerge.tenant_id == world.tenant_id
        )
        return list(
            session.scalars(
                select(Player).where(Player.tenant_id == world.tenant_id, Player.id.not_in(merged))
            )
        )


def test_launch_first_then_live_events_credit_the_launched_player(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    platform.custom = {"canvas_user_id": CANVAS_USER}
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    _canvas_event(lti_world)
    holders = _holders(lti_world)
    reg = lti_world.registration_id
    assert holders[f"lti:{reg}:canvas:{CANVAS_USER}"] == holders[f"lti:{reg}:learner-1"]
    (player,) = _live_players(lti_world)
    assert player.display_name == "Lea Learner" and player.events_applied == 2


def test_live_events_first_then_the_launch_joins_them_into_one_player(
    lti_world: LtiWorld,
) -> None:
    _canvas_event(lti_world)
    (early,) = _live_players(lti_world)
    xp_before = early.xp
    platform = lti_world.platform
    platform.custom = {"canvas_user_id": CANVAS_USER}
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    (player,) = _live_players(lti_world)
    assert player.id == early.id  # the launch's new player was merged into the older one
    assert player.xp >= xp_before and player.events_applied == 2
    reg = lti_world.registration_id
    holders = _holders(lti_world)
    assert holders[f"lti:{reg}:learner-1"] == holders[f"lti:{reg}:canvas:{CANVAS_USER}"] == early.id
    # A second launch finds everything in place: no new player, no further merge.
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    with lti_world.db.sessions() as session:
        merges = session.scalar(
            select(func.count()).where(PlayerMerge.tenant_id == lti_world.tenant_id)
        )
    assert merges == 1 and [p.id for p in _live_players(lti_world)] == [early.id]


def test_an_unsubstituted_variable_or_no_parameter_links_nothing(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    platform.custom = {"canvas_user_id": "$Canvas.user.globalId"}  # a non-Canvas platform
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    _canvas_event(lti_world)
    assert not any(":canvas:$" in value for value in _holders(lti_world))
    assert len(_live_players(lti_world)) == 2  # nothing says they are the same person


def test_dynamic_registration_asks_canvas_for_the_user_id() -> None:
    from lti.dynamic_registration import TOOL_CONFIG, PlatformConfiguration, tool_registration

    platform = PlatformConfiguration(
        issuer="https://canvas.example",
        authorization_endpoint="https://canvas.example/auth",
        token_endpoint="https://canvas.example/token",
        jwks_uri="https://canvas.example/jwks",
        registration_endpoint="https://canvas.example/register",
        auth_audience=None,
        scopes_supported=None,
        product="canvas",
    )
    config = tool_registration("https://questline.example", platform)[TOOL_CONFIG]
    assert config["custom_parameters"] == {"canvas_user_id": "$Canvas.user.globalId"}
