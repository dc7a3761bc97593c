"""The wake flag's SET NX on a held raw connection (workers.queue.FlagSetter), on real Redis."""

from __future__ import annotations

import threading

import pytest
import redis

from tests.conftest import REDIS_PREFIX, dead_redis
from workers.queue import FlagSetter


def test_set_nx_takes_a_free_flag_once_per_lifetime(redis_client: redis.Redis) -> None:
    key = f"{REDIS_PREFIX}:flag-test"
    redis_client.delete(key)
    flags = FlagSetter(redis_client)
    assert flags.set_nx(key, 30) is True
    assert flags.set_nx(key, 30) is False  # held
    assert 0 < redis_client.ttl(key) <= 30
    redis_client.delete(key)
    assert flags.set_nx(key, 30) is True


def test_each_thread_sends_on_its_own_connection_and_one_wins(redis_client: redis.Redis) -> None:
    key = f"{REDIS_PREFIX}:flag-race"
    redis_client.delete(key)
    flags = FlagSetter(redis_client)
    won: list[bool] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        won.append(flags.set_nx(key, 30))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False] * 7 + [True]


def test_a_killed_connection_raises_once_then_reconnects(redis_client: redis.Redis) -> None:
    key = f"{REDIS_PREFIX}:flag-kill"
    redis_client.delete(key)
    flags = FlagSetter(redis_client)
    assert flags.set_nx(key, 30) is True
    held = flags._local.conn  # kill exactly this connection, nobody else's
    held.send_command("CLIENT", "ID")
    redis_client.client_kill_filter(_id=held.read_response())
    redis_client.delete(key)
    try:
        taken = flags.set_nx(key, 30)  # the held socket may or may not notice at once
    except redis.ConnectionError:
        taken = flags.set_nx(key, 30)
    assert taken is True


def test_no_redis_is_an_error_not_a_hang() -> None:
    with pytest.raises(redis.ConnectionError):
        FlagSetter(dead_redis()).set_nx("x", 30)
