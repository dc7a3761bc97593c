"""Merging two players who turned out to be one person (an admin's decision, audit-logged).

Everything the source player owns moves to the target in one transaction, with both player rows
locked so a worker applying events cannot interleave: identities, ledger rows (their idempotency
keys are unique per tenant, so moving them never doubles anything), badges, inbox references,
course XP and inventory (summed), roles, and any other table that references the player (moved
when its unique keys allow; otherwise left on the source and reported). The target's aggregates
are recomputed from the moved ledger. The source stays as an empty shell and a ``player_merges``
row records the merge once, so old sessions follow it and repeating a merge changes nothing...
unless a worker applied an event to the source after all: it resolved the actor to the source just
before the merge moved the identities, and locked the (now empty) source row just after. Repeating
the merge moves such stragglers too, so "merge again" is the cure for that narrow race (the lasting
fix is for the worker to follow ``player_merges`` after locking; see docs/identity.md).
Redis boards are rebuilt from the ledger afterwards (they are derived, invariant 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Table, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity.errors import Conflict
from identity.linking import audit, move_identities
from identity.models import PlayerMerge, PlayerRole
from questline.db import Base
from questline.errors import BadRequest, NotFound
from questline.models import (
    InboxEvent,
    Player,
    PlayerBadge,
    PlayerCourseStats,
    PlayerInventory,
    XpLedger,
)
from workers.rulesets import active_rules

HANDLED = {
    "players",
    "player_identities",
    "xp_ledger",
    "player_badges",
    "player_course_stats",
    "player_inventory",
    "player_roles",
}


@dataclass
class MergeResult:
    source: int
    target: int
    already_merged: bool = False
    moved: dict[str, int] = field(default_factory=dict)
    kept_on_source: list[str] = field(default_factory=list)


def _locked(session: Session, tenant_id: int, ids: list[int]) -> dict[int, Player]:
    rows = session.scalars(
        select(Player)
        .where(Player.tenant_id == tenant_id, Player.id.in_(ids))
        .order_by(Player.id)
        .with_for_update()
    ).all()
    return {p.id: p for p in rows}


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def merge_players(
    session: Session, tenant_id: int, source: int, target: int, actor: str
) -> MergeResult:
    """Merge ``source`` into ``target`` in this session's transaction."""
    if source == target:
        raise BadRequest("source and target are the same player")
    done = session.scalar(
        select(PlayerMerge).where(
            PlayerMerge.tenant_id == tenant_id, PlayerMerge.source_player_id == source
        )
    )
    if done is not None and done.target_player_id != target:
        raise Conflict(f"player {source} was already merged into {done.target_player_id}")
    into = session.scalar(
        select(PlayerMerge.target_player_id).where(
            PlayerMerge.tenant_id == tenant_id, PlayerMerge.source_player_id == target
        )
    )
    if into is not None:
        raise Conflict(f"player {target} was merged into {into}; merge into that one")
    players = _locked(session, tenant_id, [source, target])
    for pid in (source, target):
        if pid not in players:
            raise NotFound(f"no player {pid} in this tenant")
    src, dst = players[source], players[target]
    result = MergeResult(source, target, already_merged=done is not None)

    result.moved["identities"] = move_identities(session, tenant_id, source, target)
    for model, name in ((XpLedger, "ledger"), (PlayerBadge, "badges")):
        result.moved[name] = _rowcount(
            session.execute(
                update(model)
                .where(model.tenant_id == tenant_id, model.player_id == source)
                .values(player_id=target)
            )
        )
    result.moved["inbox"] = _rowcount(
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.tenant_id == tenant_id, InboxEvent.player_id == source)
            .values(player_id=target)
        )
    )
    _sum_rows(session, tenant_id, source, target)
    _move_roles(session, tenant_id, source, target)
    result.kept_on_source = _move_other_tables(session, source, target)
    if result.already_merged and not any(result.moved.values()) and not src.events_applied:
        return result  # a repeat with nothing left behind: no change at all

    total = session.scalar(
        select(func.coalesce(func.sum(XpLedger.amount), 0)).where(
            XpLedger.tenant_id == tenant_id, XpLedger.player_id == target
        )
    )
    dst.xp = int(total or 0)
    dst.level = active_rules(session, tenant_id).levels.level_for(dst.xp)
    dst.events_applied += src.events_applied
    dst.streak_longest = max(dst.streak_longest, src.streak_longest)
    if (src.last_active_day or "") > (dst.last_active_day or ""):
        dst.streak_current, dst.last_active_day = src.streak_current, src.last_active_day
    dst.email = dst.email or src.email
    src.xp, src.level, src.events_applied = 0, 1, 0
    src.streak_current, src.email = 0, None
    if not result.already_merged:
        session.add(
            PlayerMerge(
                tenant_id=tenant_id, source_player_id=source, target_player_id=target, actor=actor
            )
        )
    audit(
        session,
        tenant_id,
        "merge_again" if result.already_merged else "merge",
        actor,
        target,
        source=source,
        moved=result.moved,
        kept_on_source=result.kept_on_source,
    )
    session.flush()
    return result


def _sum_rows(session: Session, tenant_id: int, source: int, target: int) -> None:
    """Course XP and inventory are keyed by player: add the source's into the target's."""
    for course, xp in session.execute(
        select(PlayerCourseStats.course, PlayerCourseStats.xp).where(
            PlayerCourseStats.tenant_id == tenant_id, PlayerCourseStats.player_id == source
        )
    ).all():
        row = session.get(PlayerCourseStats, (tenant_id, course, target))
        if row is None:
            session.add(
                PlayerCourseStats(tenant_id=tenant_id, course=course, player_id=target, xp=xp)
            )
        else:
            row.xp += xp
    session.execute(
        delete(PlayerCourseStats).where(
            PlayerCourseStats.tenant_id == tenant_id, PlayerCourseStats.player_id == source
        )
    )
    for item, quantity in session.execute(
        select(PlayerInventory.item, PlayerInventory.quantity).where(
            PlayerInventory.tenant_id == tenant_id, PlayerInventory.player_id == source
        )
    ).all():
        inv = session.get(PlayerInventory, (target, item))
        if inv is None:
            session.add(
                PlayerInventory(tenant_id=tenant_id, player_id=target, item=item, quantity=quantity)
            )
        else:
            inv.quantity += quantity
    session.execute(
        delete(PlayerInventory).where(
            PlayerInventory.tenant_id == tenant_id, PlayerInventory.player_id == source
        )
    )
    session.flush()


def _move_roles(session: Session, tenant_id: int, source: int, target: int) -> None:
    have = set(
        session.execute(
            select(PlayerRole.role, PlayerRole.scope).where(
                PlayerRole.tenant_id == tenant_id, PlayerRole.player_id == target
            )
        ).all()
    )
    for role in session.scalars(
        select(PlayerRole).where(PlayerRole.tenant_id == tenant_id, PlayerRole.player_id == source)
    ).all():
        if (role.role, role.scope) in have:
            session.delete(role)
        else:
            role.player_id = target
    session.flush()


def _move_other_tables(session: Session, source: int, target: int) -> list[str]:
    """Other modules' tables that reference players (leagues, LTI, ...): move their rows where
    their unique keys allow; where they do not (the target already has that week's league
    membership, say) the rows stay with the source, which is kept, and are reported."""
    kept = []
    for table in Base.metadata.sorted_tables:
        if table.name in HANDLED:
            continue
        for column in _player_columns(table):
            try:
                with session.begin_nested():
                    session.execute(
                        update(table).where(column == source).values({column.name: target})
                    )
            except IntegrityError:
                kept.append(table.name)
    return kept


def _player_columns(table: Table) -> list[Column[Any]]:
    return [
        fk.parent
        for fk in table.foreign_keys
        if fk.column.table.name == "players" and fk.column.name == "id"
    ]
