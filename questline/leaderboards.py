"""Leaderboards in Redis sorted sets: this module owns their keys, writes and reads.

Scores are absolute XP totals taken from PostgreSQL after the award transaction commits, written
with ``ZADD GT``: a retried or out-of-order write can never lower a score or count twice, and the
whole structure can be rebuilt from the database at any time (``questline reconcile``).
Keys are hash-tagged by tenant so one tenant's boards live on one Redis Cluster shard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

BOARD_PATTERN = re.compile(r"^(tenant|course:[^\s]{1,255}|group:[^\s]{1,255})$")


class UnknownBoard(ValueError):
    """The board name is not one Questline keeps."""


def validate_board(board: str) -> str:
    if not BOARD_PATTERN.match(board):
        raise UnknownBoard(board)
    return board


def course_board(course: str) -> str:
    return f"course:{course}"


@dataclass(frozen=True)
class Leaderboards:
    """Reads and writes of every board of every tenant, under one key prefix."""

    client: redis.Redis
    prefix: str = "ql"

    def key(self, tenant_id: int, board: str) -> str:
        return f"{self.prefix}:{{t{tenant_id}}}:board:{board}"

    def boards_pattern(self, tenant_id: int) -> str:
        return f"{self.prefix}:{{t{tenant_id}}}:board:*"

    def record(self, pipe: Any, tenant_id: int, board: str, scores: Mapping[int, int]) -> None:
        """Queue raising each player's score to the given total (never lowering it)."""
        if scores:
            pipe.zadd(self.key(tenant_id, board), {str(p): xp for p, xp in scores.items()}, gt=True)

    def page(
        self, tenant_id: int, board: str, *, limit: int, around: int | None = None
    ) -> tuple[list[tuple[int, int, int]], int, int | None]:
        """(rank, player id, xp) rows, the board's size, and ``around``'s rank if on the board.

        With ``around``, the page is centred on that player; otherwise it is the top ``limit``.
        Ranks are 1-based; ties share the order Redis gives them (by member).
        """
        return page_of(self.client, self.key(tenant_id, board), limit=limit, around=around)

    def read_all(self, tenant_id: int) -> dict[str, dict[int, int]]:
        """Every board of a tenant as {board: {player: xp}}; used by reconcile to measure drift."""
        out: dict[str, dict[int, int]] = {}
        marker = f"{self.prefix}:{{t{tenant_id}}}:board:"
        for raw_key in self.client.scan_iter(match=self.boards_pattern(tenant_id), count=500):
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            board = key[len(marker) :]
            out[board] = {
                int(m): int(s) for m, s in self.client.zrange(key, 0, -1, withscores=True)
            }
        return out

    def replace_all(self, tenant_id: int, boards: Mapping[str, Mapping[int, int]]) -> None:
        """Make the tenant's boards exactly ``boards``, atomically per board (MULTI/EXEC)."""
        existing = set(self.read_all(tenant_id))
        pipe = self.client.pipeline(transaction=True)
        for board in existing - set(boards):
            pipe.delete(self.key(tenant_id, board))
        for board, scores in boards.items():
            key = self.key(tenant_id, board)
            pipe.delete(key)
            for chunk in _chunks(list(scores.items()), 5000):
                pipe.zadd(key, {str(p): xp for p, xp in chunk})
        pipe.execute()


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def page_of(
    client: Any, key: str, *, limit: int, around: int | None = None
) -> tuple[list[tuple[int, int, int]], int, int | None]:
    """One page of a sorted set, best first: the top ``limit``, or ``limit`` rows centred on
    ``around``; with the set's size and ``around``'s 1-based rank. Shared by every board."""
    pipe = client.pipeline(transaction=False)
    pipe.zcard(key)
    if around is not None:
        pipe.zrevrank(key, str(around))
    total, *rest = pipe.execute()
    my_rank = rest[0] if rest else None
    start = 0
    if my_rank is not None:
        start = max(0, min(my_rank - limit // 2, max(total - limit, 0)))
    rows = client.zrevrange(key, start, start + limit - 1, withscores=True)
    entries = [(start + i + 1, int(member), int(score)) for i, (member, score) in enumerate(rows)]
    return entries, int(total), (my_rank + 1 if my_rank is not None else None)
