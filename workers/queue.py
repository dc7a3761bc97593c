"""Waking the workers. The RQ queue is only a wake-up (ARCHITECTURE invariant 1): the inbox
row is what guarantees an event is processed, so a lost job costs latency, never an event.

RQ's forking worker manages about 45 jobs/s here, so one job per event cannot reach our targets.
Instead a job drains the inbox in batches, and a Redis flag (SET NX) keeps at most one wake-up
waiting in the queue: a burst of single-event requests becomes a few jobs of hundreds of rows.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import redis
from rq import Queue, Retry

from workers.pipeline import Pipeline

log = logging.getLogger("questline.queue")

WAKE_TTL_SECONDS = 30


class Dispatcher(Protocol):
    def wake(self) -> None: ...

    def depth(self) -> int: ...


class InlineDispatcher:
    """Embedded default: run the pipeline in the caller's thread, one drain at a time."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            self.pipeline.drain()

    def depth(self) -> int:
        return 0


def wake_key(prefix: str) -> str:
    return f"{prefix}:wake"


class RqDispatcher:
    """Enqueue a drain job on RQ unless one is already waiting."""

    def __init__(self, connection: redis.Redis, queue_name: str, prefix: str) -> None:
        self.connection = connection
        self.queue = Queue(queue_name, connection=connection)
        self.flag = wake_key(prefix)

    def wake(self) -> None:
        if self.connection.set(self.flag, b"1", nx=True, ex=WAKE_TTL_SECONDS):
            self.queue.enqueue(
                "workers.jobs.drain_inbox",
                retry=Retry(max=3, interval=[1, 5, 15]),
                job_timeout=300,
                result_ttl=60,
                failure_ttl=7 * 24 * 3600,
            )

    def depth(self) -> int:
        return len(self.queue)
