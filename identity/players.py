"""Find or create the player behind each event's actor, for a whole batch at once.

An actor is recognised by its external id when it has one, else by its email. Linking an email
to a player already known by another id is the identity issue's job (verified emails only), so
here an email never joins two actors that carry different ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import select, text, tuple_
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
    missing = [(key, wanted[key]) for key in sorted(wanted) if key not in found]
    if missing and session.get_bind().dialect.name == "postgresql":
        found.update(_create_many(session, tenant_id, missing))
        return found
    for key, actor in missing:
        found[key] = _create(session, tenant_id, key, actor)
    return found


# Identities looked up by joining an unnest of two arrays: constant SQL text (prepared once per
# connection) whatever the batch size, where a tuple IN-list renders two placeholders per key.
_LOOKUP_PG = text(
    "SELECT i.kind, i.value, i.player_id FROM player_identities AS i "
    "JOIN unnest(CAST(:kinds AS text[]), CAST(:values AS text[])) AS w(kind, value) "
    "ON i.kind = w.kind AND i.value = w.value WHERE i.tenant_id = :tenant_id"
)

# New players and their identities in one statement. Player ids are drawn from the sequence
# first so each identity row knows its player; the foreign key is checked at the statement's
# end, after both inserts. An identity another worker created meanwhile is skipped (ON
# CONFLICT, waiting for that worker's commit), and the player drawn for it is deleted after.
_CREATE_PG = text(
    "WITH w AS ("
    " SELECT nextval(pg_get_serial_sequence('players', 'id')) AS id, u.*"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
    "  AS u(ord int, kind text, value text, display_name text, email text, timezone text)"
    " ORDER BY u.ord),"
    " p AS (INSERT INTO players (id, tenant_id, display_name, email, timezone)"
    "  SELECT id, :tenant_id, display_name, email, timezone FROM w ORDER BY ord RETURNING id),"
    " i AS (INSERT INTO player_identities (tenant_id, player_id, kind, value)"
    "  SELECT :tenant_id, w.id, w.kind, w.value FROM w ORDER BY w.ord"
    "  ON CONFLICT ON CONSTRAINT uq_identity DO NOTHING RETURNING kind, value)"
    " SELECT w.kind, w.value, w.id, i.kind IS NOT NULL FROM w"
    " LEFT JOIN i ON i.kind = w.kind AND i.value = w.value"
)


def _create_many(
    session: Session, tenant_id: int, missing: list[tuple[ActorKey, Actor]]
) -> dict[ActorKey, int]:
    """Create every missing player at once (PostgreSQL): one statement for the common case,
    two more when a concurrent worker created some of the same identities first."""
    rows = [
        {
            "ord": n,
            "kind": key[0],
            "value": key[1],
            "display_name": _display_name(actor),
            "email": actor.email,
            "timezone": actor.timezone,
        }
        for n, (key, actor) in enumerate(missing)
    ]
    document = json.dumps(rows, separators=(",", ":"))
    out: dict[ActorKey, int] = {}
    lost: list[ActorKey] = []
    unused: list[int] = []
    for kind, value, pid, created in session.execute(
        _CREATE_PG, {"rows": document, "tenant_id": tenant_id}
    ):
        if created:
            out[(kind, value)] = pid
        else:
            lost.append((kind, value))
            unused.append(pid)
    if lost:  # the player drawn for an identity someone else created first is not needed
        session.execute(
            text("DELETE FROM players WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": unused}
        )
        out.update(_lookup(session, tenant_id, lost))
    return out


def _display_name(actor: Actor) -> str:
    return actor.name or actor.id or (actor.email or "").split("@")[0]


def _lookup(session: Session, tenant_id: int, keys: list[ActorKey]) -> dict[ActorKey, int]:
    if keys and session.get_bind().dialect.name == "postgresql":
        params = {
            "kinds": [kind for kind, _ in keys],
            "values": [value for _, value in keys],
            "tenant_id": tenant_id,
        }
        return {(kind, value): pid for kind, value, pid in session.execute(_LOOKUP_PG, params)}
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
                display_name=_display_name(actor),
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
