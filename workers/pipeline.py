"""The pipeline runner: drain the inbox batch by batch, then write the boards.

Used by the RQ job (``workers.jobs.drain_inbox``), by the inline dispatcher of the embedded
default, and by tests, so all three run exactly the same code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from questline import metrics
from questline.db import Database
from questline.leaderboards import Leaderboards
from questline.settings import Settings
from workers.leagues import after_batch as league_after_batch
from workers.process import observe, process_batch, utcnow, write_boards

log = logging.getLogger("questline.worker")


@dataclass
class DrainStats:
    batches: int = 0
    applied: int = 0
    failed: int = 0
    dead: int = 0
    more: bool = False


class Pipeline:
    """Everything a worker needs: the database, the boards, the settings."""

    def __init__(self, db: Database, boards: Leaderboards, settings: Settings) -> None:
        self.db = db
        self.boards = boards
        self.settings = settings

    def run_batch(self) -> tuple[int, int, int, int]:
        """One batch: (claimed, applied, failed, dead)."""
        started = time.perf_counter()
        result = process_batch(
            self.db,
            limit=self.settings.job_batch_size,
            max_attempts=self.settings.max_attempts,
            retry_base_seconds=self.settings.retry_base_seconds,
        )
        if result.claimed:
            write_boards(self.boards, result.boards)
            league_after_batch(self.db, self.boards, result.boards)  # issue 4: leagues
            observe(result, utcnow())
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            log.info(
                "batch applied",
                extra={
                    "claimed": result.claimed,
                    "applied": result.applied,
                    "failed": result.failed,
                    "dead": result.dead,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        return result.claimed, result.applied, result.failed, result.dead

    def drain(self, *, time_budget: float | None = None) -> DrainStats:
        """Process batches until the inbox has nothing due, or the time budget is spent."""
        stats = DrainStats()
        deadline = None if time_budget is None else time.monotonic() + time_budget
        while True:
            claimed, applied, failed, dead = self.run_batch()
            if not claimed:
                return stats
            stats.batches += 1
            stats.applied += applied
            stats.failed += failed
            stats.dead += dead
            if claimed < self.settings.job_batch_size:
                return stats
            if deadline is not None and time.monotonic() >= deadline:
                stats.more = True
                return stats
