"""Find or create the player behind each event's actor, for a whole batch at once.

An actor is recognised by its external id when it has one, else by its email. Linking an email
to a player already known by another id is the identity issue's job (verified emails only), so
here an email never joins two actors that carry different ids.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.events import Actor
from questline.models import Player, PlayerIdentity

ActorKey = tuple[str, str]


def actor_key(actor: Actor) -> ActorKey:
    """The identity an actor is looked up by: ("actor", id) or ("email", address)."""
    if actor.id is not None:
        return ("actor", actor.id)
    assert actor.email is not None, "a canonical event always has an actor id or email"
    return ("email", actor.email)


def resolve_players(
    session: Session, tenant_id: int, actors: Iterable[Actor]
) -> dict[ActorKey, int]:
    """Map each actor to a player id, creating players (and their identities) as needed."""
    wanted: dict[ActorKey, Actor] = {}
    for actor in actors:
        wanted.setdefault(actor_key(actor), actor)
    found = _lookup(session, tenant_id, list(wanted))
    # Create in one global order: two workers inserting the same new identities in different
    # orders would each wait on the other's uncommitted row (a deadlock on uq_identity).
    for key in sorted(wanted):
        if key not in found:
            found[key] = _create(session, tenant_id, key, wanted[key])
    return found


def _lookup(session: Session, tenant_id: int, keys: list[ActorKey]) -> dict[ActorKey, int]:
    out: dict[ActorKey, int] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(PlayerIdentity.kind, PlayerIdentity.value, PlayerIdentity.player_id).where(
                PlayerIdentity.tenant_id == tenant_id,
                tuple_(PlayerIdentity.kind, PlayerIdentity.value).in_(chunk),
            )
        )
        out.update({(kind, value): player_id for kind, value, player_id in rows})
    return out


def _create(session: Session, tenant_id: int, key: ActorKey, actor: Actor) -> int:
    """Create a player and its identity; if a concurrent worker won the race, use theirs."""
    try:
        with session.begin_nested():
            player = Player(
                tenant_id=tenant_id,
                display_name=actor.name or actor.id or (actor.email or "").split("@")[0],
                email=actor.email,
                timezone=actor.timezone,
            )
            session.add(player)
            session.flush()
            session.add(
                PlayerIdentity(tenant_id=tenant_id, player_id=player.id, kind=key[0], value=key[1])
            )
            session.flush()
            return player.id
    except IntegrityError:
        existing = _lookup(session, tenant_id, [key])
        if key not in existing:
            raise
        return existing[key]
