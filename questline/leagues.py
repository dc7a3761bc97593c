"""League standings and time-windowed boards in Redis: this module owns their keys.

Two structures, both sorted sets of player -> XP, hash-tagged by tenant like the all-time boards
(``questline.leaderboards``) so one tenant lives on one Redis Cluster shard:

* ``<prefix>:{t<tenant>}:league:c<cohort id>``: one league cohort's XP for its week;
* ``<prefix>:{t<tenant>}:win:<day|week|month>:<first local day>:<board>``: a time-windowed board.

and two caches that let a standings read be one Redis round trip and no SQL (``read_cohort``):

* ``<prefix>:{t<tenant>}:league:seats:<league id>:<week>``: a hash player -> cohort id (a seat
  never changes within its week);
* ``<prefix>:{t<tenant>}:league:cm:<cohort id>``: the cohort's tier and members with names and
  opt-outs (JSON), filled by a read that had to ask PostgreSQL, dropped when a player joins the
  cohort or changes their board preference, and short-lived (names change rarely).

Scores are absolute window totals summed from the ledger after the award commits, written with
``ZADD GT`` so a late or retried write never lowers a score. Every key expires some weeks after
its window, and everything here can be rebuilt from PostgreSQL (``questline reconcile``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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
META_TTL_SECONDS = 300  # a cohort's names and opt-outs are at most this stale

# Seat, cohort metadata and cohort scores in one round trip. The cohort's keys are built from the
# seat inside the script; they carry the tenant's hash tag like the seat key, so on Redis
# Cluster they live in the same slot.
_READ_COHORT = """
local cid = redis.call('HGET', KEYS[1], ARGV[1])
if not cid then return false end
local meta = redis.call('GET', ARGV[2] .. 'cm:' .. cid)
return {cid, meta or false, redis.call('ZRANGE', ARGV[2] .. 'c' .. cid, 0, -1, 'WITHSCORES')}
"""


@dataclass(frozen=True)
class CohortView:
    """What Redis knows of a viewer's cohort: its id, its metadata if cached (``tier`` and
    ``members``: [player id, name, hidden]) and every member's week XP in the sorted set."""

    cohort_id: int
    meta: dict[str, Any] | None
    scores: dict[int, int]


@dataclass(frozen=True)
class LeagueStore:
    """Reads and writes of cohort standings and windowed boards for every tenant."""

    client: redis.Redis
    prefix: str = "ql"

    def cohort_key(self, tenant_id: int, cohort_id: int) -> str:
        return f"{self.prefix}:{{t{tenant_id}}}:league:c{cohort_id}"

    def window_key(self, tenant_id: int, kind: WindowKind, period: str, board: str) -> str:
        return f"{self.prefix}:{{t{tenant_id}}}:win:{kind}:{period}:{board}"

    def seats_key(self, tenant_id: int, league_id: int, week: str) -> str:
        return f"{self.prefix}:{{t{tenant_id}}}:league:seats:{league_id}:{week}"

    def meta_key(self, tenant_id: int, cohort_id: int) -> str:
        return f"{self.prefix}:{{t{tenant_id}}}:league:cm:{cohort_id}"

    def read_cohort(
        self, tenant_id: int, league_id: int, week: str, player_id: int
    ) -> CohortView | None:
        """The viewer's cohort from Redis in one round trip (a Lua script), or None if the seat
        is not cached. Redis without scripting (the embedded emulation) takes two."""
        seats = self.seats_key(tenant_id, league_id, week)
        base = f"{self.prefix}:{{t{tenant_id}}}:league:"
        try:
            found = self._script()(keys=[seats], args=[player_id, base])
        except redis.exceptions.ResponseError:  # no Lua here: the same reads in two steps
            cid = self.client.hget(seats, str(player_id))
            if cid is None:
                return None
            pipe = self.client.pipeline(transaction=False)
            pipe.get(f"{base}cm:{int(cid)}")
            pipe.zrange(f"{base}c{int(cid)}", 0, -1, withscores=True)
            meta_raw, rows = pipe.execute()
            found = [cid, meta_raw, [x for pair in rows for x in pair]]
        if not found:
            return None
        cid, meta_raw, flat = found
        scores = {int(flat[i]): int(float(flat[i + 1])) for i in range(0, len(flat), 2)}
        return CohortView(int(cid), json.loads(meta_raw) if meta_raw else None, scores)

    def _script(self) -> Any:
        script = self.__dict__.get("_read_cohort")
        if script is None:
            script = self.client.register_script(_READ_COHORT)
            object.__setattr__(self, "_read_cohort", script)  # frozen: cache the Script once
        return script

    def remember_cohort(
        self,
        tenant_id: int,
        league_id: int,
        week: str,
        seats: Mapping[int, int],
        cohort_id: int,
        meta: Mapping[str, Any],
    ) -> None:
        """Cache seats (player -> cohort) and one cohort's metadata, read from PostgreSQL."""
        pipe = self.client.pipeline(transaction=False)
        key = self.seats_key(tenant_id, league_id, week)
        pipe.hset(key, mapping={str(p): c for p, c in seats.items()})
        pipe.expire(key, TTL_SECONDS["cohort"])
        pipe.set(self.meta_key(tenant_id, cohort_id), json.dumps(meta), ex=META_TTL_SECONDS)
        pipe.execute()

    def forget_cohorts(self, pipe: Any, tenant_id: int, cohort_ids: Iterable[int]) -> None:
        """Queue dropping cached cohort metadata (members joined, or a preference changed)."""
        keys = [self.meta_key(tenant_id, c) for c in sorted(set(cohort_ids))]
        if keys:
            pipe.delete(*keys)

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
        self.forget_cohorts(pipe, tenant_id, cohorts)
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
