"""The long-lived objects a worker process needs, built once per process from settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from questline.db import Database
from questline.leaderboards import Leaderboards
from questline.redis_client import connect
from questline.settings import Settings, load_settings
from workers.pipeline import Pipeline
from workers.queue import Dispatcher, InlineDispatcher, RqDispatcher


@dataclass
class Context:
    settings: Settings
    db: Database
    redis: redis.Redis
    boards: Leaderboards
    pipeline: Pipeline
    dispatcher: Dispatcher


def build_context(settings: Settings, db: Database | None = None) -> Context:
    db = db or Database(settings.database_url)
    client = connect(settings)
    boards = Leaderboards(client, settings.redis_prefix)
    pipeline = Pipeline(db, boards, settings)
    dispatcher: Dispatcher = (
        InlineDispatcher(pipeline)
        if settings.embedded
        else RqDispatcher(client, settings.queue_name, settings.redis_prefix, settings.drain_slots)
    )
    return Context(settings, db, client, boards, pipeline, dispatcher)


_lock = threading.Lock()
_current: Context | None = None


def set_worker_context(ctx: Context) -> None:
    global _current
    with _lock:
        _current = ctx


def worker_context() -> Context:
    """The process's context; built from the environment on first use in a bare RQ worker."""
    global _current
    with _lock:
        if _current is None:
            _current = build_context(load_settings())
        return _current
