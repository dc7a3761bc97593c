"""League standings and time-windowed boards in Redis: this module owns their keys.

Two structures, both sorted sets of player -> XP, hash-tagged by tenant like the all-time boards
(``questline.leaderboards``) so one tenant lives on one Redis Cluster shard:

* ``<prefix>:{t<tenant>}:league:c<cohort id>``: one league cohort's XP for its week;
* ``<prefix>:{t<tenant>}:win:<day|week|month>:<first local day>:<board>``: a time-windowed board.

Scores are absolute window totals summed from the ledger after the award commits, written with
``ZADD GT`` so a late or retried write never lowers a score. Every key expires some weeks after
its window, and everything here can be rebuilt from PostgreSQL (``questline reconcile``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from engine.leagues import WindowKind
from questline.leaderboards import page_of

# How long a key outlives the start of its window: long enough to read last week's final table.
TTL_SECONDS: dict[str, int] = {
    "day": 3 * 86400,
    "week": 21 * 86400,
    "month": 70 * 86400,
    "cohort": 21 * 86400,
}


@dataclass(frozen=True)
class LeagueStore:
    """Reads and writes of cohort standings and windowed boards for every tenant."""

    client: redis.Redis
    prefix: str = "ql"

    def cohort_key(self, tenant_id: int, cohort_id: int) -> str:
        return f"{self.prefix}:{{t{tenant_id}}}:league:c{cohort_id}"

    def window_key(self, tenant_id: int, kind: WindowKind, period: str, board: str) -> str:
        return f"{self.prefix}:{{t{tenant_id}}}:win:{kind}:{period}:{board}"

    def record_cohort(
        self, pipe: Any, tenant_id: int, cohort_id: int, scores: Mapping[int, int]
    ) -> None:
        """Queue raising members' week XP to the given totals (never lowering them)."""
        if scores:
            key = self.cohort_key(tenant_id, cohort_id)
            pipe.zadd(key, {str(p): xp for p, xp in scores.items()}, gt=True)
            pipe.expire(key, TTL_SECONDS["cohort"])

    def record_window(
        self,
        pipe: Any,
        tenant_id: int,
        kind: WindowKind,
        period: str,
        board: str,
        scores: Mapping[int, int],
    ) -> None:
        if scores:
            key = self.window_key(tenant_id, kind, period, board)
            pipe.zadd(key, {str(p): xp for p, xp in scores.items()}, gt=True)
            pipe.expire(key, TTL_SECONDS[kind])

    def cohort_scores(self, tenant_id: int, cohort_id: int) -> dict[int, int]:
        rows = self.client.zrange(self.cohort_key(tenant_id, cohort_id), 0, -1, withscores=True)
        return {int(m): int(s) for m, s in rows}

    def replace_cohorts(self, tenant_id: int, cohorts: Mapping[int, Mapping[int, int]]) -> None:
        """Make each given cohort's set exactly ``scores`` (MULTI/EXEC): used by reconcile."""
        pipe = self.client.pipeline(transaction=True)
        for cohort_id, scores in cohorts.items():
            key = self.cohort_key(tenant_id, cohort_id)
            pipe.delete(key)
            if scores:
                pipe.zadd(key, {str(p): xp for p, xp in scores.items()})
                pipe.expire(key, TTL_SECONDS["cohort"])
        pipe.execute()

    def replace_window(
        self,
        tenant_id: int,
        kind: WindowKind,
        period: str,
        boards: Mapping[str, Mapping[int, int]],
    ) -> None:
        """Make every board of one window exactly ``boards``; boards not given are dropped."""
        pattern = self.window_key(tenant_id, kind, period, "*")
        stale = set(self.client.scan_iter(match=pattern, count=500))
        pipe = self.client.pipeline(transaction=True)
        for key in stale:
            pipe.delete(key)
        for board, scores in boards.items():
            if scores:
                key = self.window_key(tenant_id, kind, period, board)
                pipe.zadd(key, {str(p): xp for p, xp in scores.items()})
                pipe.expire(key, TTL_SECONDS[kind])
        pipe.execute()

    def window_page(
        self,
        tenant_id: int,
        kind: WindowKind,
        period: str,
        board: str,
        *,
        limit: int,
        around: int | None = None,
    ) -> tuple[list[tuple[int, int, int]], int, int | None]:
        """(rank, player, xp) rows, the board's size, and ``around``'s rank (1-based) if on it.

        The same paging as the all-time boards: the top ``limit``, or ``limit`` rows centred
        on ``around`` ("10 around me").
        """
        key = self.window_key(tenant_id, kind, period, board)
        return page_of(self.client, key, limit=limit, around=around)
