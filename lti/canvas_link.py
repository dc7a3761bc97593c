"""One player for a Canvas user, whether Live Events or an LTI launch arrives first.

Canvas's LTI 1.3 ``sub`` is an opaque id that its Live Events never carry; they name users by
Canvas id. Canvas substitutes ``$Canvas.user.globalId`` into a custom parameter when the tool
asks for it (our dynamic registration asks for ``canvas_user_id``; a manual install adds
``canvas_user_id=$Canvas.user.globalId`` to the custom fields). A launch carrying it is the
platform's signed statement that this ``sub`` and that Canvas user are one person, so the launch
records the Canvas identity ``lti:<registration>:canvas:<global id>``, the actor id a Canvas
webhook connection made with ``--lti-registration <registration>`` gives the same user.

Whichever came first, the launch joins them: the identity is added to the launch's player; if
Live Events had already created a player for it, the younger of the two players is merged into
the older (ledgers combined by ``identity.merge``, audit-logged as done by the LTI launch).
Platforms that do not substitute the variable send it back literally (``$Canvas...``): ignored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from identity.linking import audit, holder
from identity.merge import merge_players
from questline.models import PlayerIdentity

CUSTOM_KEY = "canvas_user_id"
SUBSTITUTION = "$Canvas.user.globalId"
MERGED_BY = "lti-launch:canvas_user_id"


def canvas_user_id(custom: Any) -> str | None:
    """The Canvas global user id a launch's custom claim carries, if substituted."""
    if not isinstance(custom, dict):
        return None
    value = custom.get(CUSTOM_KEY)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isdigit() or len(value) > 40:
        return None  # absent, or "$Canvas.user.globalId" left unsubstituted
    return value


def canvas_actor_id(registration_id: int, user_id: str) -> str:
    """The actor id of Canvas user ``user_id`` under LTI registration ``registration_id``."""
    return f"lti:{int(registration_id)}:canvas:{user_id}"


def link_canvas_user(
    session: Session, tenant_id: int, registration_id: int, player_id: int, user_id: str
) -> int:
    """Give ``player_id`` the Canvas identity; the surviving player's id (a merge may happen)."""
    value = canvas_actor_id(registration_id, user_id)
    owner = holder(session, tenant_id, "actor", value)
    if owner == player_id:
        return player_id
    if owner is None:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(PlayerIdentity)
            .values(tenant_id=tenant_id, player_id=player_id, kind="actor", value=value)
            .on_conflict_do_nothing()
        )
        owner = holder(session, tenant_id, "actor", value)  # a racing webhook may have won
        if owner == player_id:
            audit(session, tenant_id, "link", MERGED_BY, player_id, kind="actor", value=value)
            return player_id
    assert owner is not None
    source, target = max(owner, player_id), min(owner, player_id)
    merge_players(session, tenant_id, source, target, MERGED_BY)
    return target
