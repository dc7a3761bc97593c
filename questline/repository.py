"""Tenant-scoped reads: every query about players and boards filters by tenant here, once.

Route handlers get a ``TenantRepository`` for the authenticated tenant and cannot express a
query without that filter (ARCHITECTURE invariant 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from questline.models import InboxEvent, Player, PlayerCourseStats, PlayerIdentity


@dataclass(frozen=True)
class TenantRepository:
    session: Session
    tenant_id: int

    def player(self, player_id: int) -> Player | None:
        return self.session.scalar(
            select(Player).where(Player.tenant_id == self.tenant_id, Player.id == player_id)
        )

    def players_by_actor(self, actor: str) -> list[Player]:
        """Players known by ``actor`` as an external id, or as an email."""
        values = [("actor", actor)]
        if "@" in actor:
            values.append(("email", actor.strip().lower()))
        ids = self.session.scalars(
            select(PlayerIdentity.player_id).where(
                PlayerIdentity.tenant_id == self.tenant_id,
                PlayerIdentity.kind.in_([kind for kind, _ in values]),
                PlayerIdentity.value.in_([value for _, value in values]),
            )
        ).all()
        if not ids:
            return []
        return list(
            self.session.scalars(
                select(Player)
                .where(Player.tenant_id == self.tenant_id, Player.id.in_(set(ids)))
                .order_by(Player.id)
            )
        )

    def names(self, player_ids: list[int]) -> dict[int, str]:
        if not player_ids:
            return {}
        rows = self.session.execute(
            select(Player.id, Player.display_name).where(
                Player.tenant_id == self.tenant_id, Player.id.in_(player_ids)
            )
        )
        return {pid: name for pid, name in rows}

    def board_from_database(
        self, board: str, *, limit: int, around: int | None
    ) -> tuple[list[tuple[int, int, int]], int, int | None]:
        """The same page as the Redis board, computed from PostgreSQL (the degraded path)."""
        if board == "tenant":
            score, who = Player.xp, Player.id
            base = select(who, score).where(Player.tenant_id == self.tenant_id, score > 0)
        else:
            course = board.removeprefix("course:")
            score, who = PlayerCourseStats.xp, PlayerCourseStats.player_id
            base = select(who, score).where(
                PlayerCourseStats.tenant_id == self.tenant_id,
                PlayerCourseStats.course == course,
                score > 0,
            )
        # Ties in the order Redis gives them: ZREVRANGE sorts equal scores by member, descending.
        ranked = base.order_by(score.desc(), cast(who, String).desc())
        rows = [(int(pid), int(xp)) for pid, xp in self.session.execute(ranked)]
        total = len(rows)
        my_rank = next((i for i, (pid, _) in enumerate(rows) if pid == around), None)
        start = 0 if my_rank is None else max(0, min(my_rank - limit // 2, max(total - limit, 0)))
        page = [(start + i + 1, pid, xp) for i, (pid, xp) in enumerate(rows[start : start + limit])]
        return page, total, (my_rank + 1 if my_rank is not None else None)

    def inbox_counts(self) -> dict[str, int]:
        rows = self.session.execute(
            select(InboxEvent.status, func.count())
            .where(InboxEvent.tenant_id == self.tenant_id)
            .group_by(InboxEvent.status)
        )
        return {status: int(n) for status, n in rows.tuples()}


def player_json(
    player: Player,
    *,
    next_level_xp: int | None,
    rank: int | None,
    badges: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": player.id,
        "display_name": player.display_name,
        "xp": player.xp,
        "level": player.level,
        "next_level_xp": next_level_xp,
        "badges": badges or [],
        "streak": {
            "current": player.streak_current,
            "longest": player.streak_longest,
            "last_active_day": player.last_active_day,
        },
        "rank": rank,
        "events_applied": player.events_applied,
    }
