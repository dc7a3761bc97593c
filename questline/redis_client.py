"""The Redis connection: a real server when ``QUESTLINE_REDIS_URL`` is set, else in-process.

The in-process emulation (fakeredis) is what makes the embedded default a single process with
no services; it holds derived state only, so losing it on exit loses nothing (invariant 1).
"""

from __future__ import annotations

import threading

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from questline.settings import Settings

_embedded_lock = threading.Lock()
_embedded: dict[str, redis.Redis] = {}


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured Redis; one shared in-process server in embedded mode."""
    if settings.redis_url:
        # Fail fast: a widget read falls back to PostgreSQL rather than wait out long retries.
        return redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        )
    import fakeredis

    with _embedded_lock:
        client = _embedded.get(settings.redis_prefix)
        if client is None:
            client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
            _embedded[settings.redis_prefix] = client
        return client
