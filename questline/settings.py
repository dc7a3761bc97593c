"""Every ``QUESTLINE_*`` variable, read once, typed, with a clear error on a bad value.

The rest of the code never reads ``os.environ``: it is handed a ``Settings``. That keeps tests
honest (they build the settings they need) and keeps configuration in one place.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "QUESTLINE_"


class SettingsError(ValueError):
    """A ``QUESTLINE_*`` variable has a value we cannot use; raised at start-up."""


def _int(value: str) -> int:
    return int(value)


def _float(value: str) -> float:
    return float(value.strip())


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("not an IANA time zone name") from exc
    return value


def _sha256_list(value: str) -> tuple[str, ...]:
    digests = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    for digest in digests:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("expected comma-separated SHA-256 hex digests (64 hex characters)")
    return digests


def _days(value: str) -> int:
    days = int(value)
    if days < 0:
        raise ValueError("expected a number of days >= 0 (0 = keep forever)")
    return days


def _optional(value: str) -> str | None:
    return value or None


def _address(value: str) -> str | None:
    if not value:
        return None
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected host:port, for example 127.0.0.1:9100")
    return value


@dataclass(frozen=True)
class Settings:
    """Questline's configuration. Field ``foo_bar`` is read from ``QUESTLINE_FOO_BAR``."""

    # Storage. SQLite is the embedded default; PostgreSQL (psycopg 3) is the production store.
    database_url: str = "sqlite:///questline.db"
    # Without a Redis URL Questline runs embedded: Redis emulated in-process, jobs run inline.
    redis_url: str | None = None
    # Key prefix for everything Questline keeps in Redis (lets tests and tenants of a shared Redis
    # live side by side).
    redis_prefix: str = "ql"
    queue_name: str = "questline"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    default_timezone: str = "UTC"
    # Ingest limits: items per request and bytes per body.
    max_batch: int = 1000
    max_body_bytes: int = 5 * 1024 * 1024
    # Worker: how many inbox rows one job claims, how often a failing event is retried.
    job_batch_size: int = 500
    max_attempts: int = 5
    retry_base_seconds: int = 10
    # A drain job keeps polling this long after the inbox runs dry before it ends, so a steady
    # stream of single events is served by one job instead of one RQ job per handful of events.
    drain_linger_seconds: float = 1.0
    # While events trickle in, a drain waits this long between batches so each batch carries
    # more rows (a batch has a fixed cost of a few dozen statements): latency for throughput.
    # Measured (bench/pipeline.py --quick, one worker, single-event requests): 0.05 s gave
    # 361 events/s, 0.15 s 409 events/s; event->leaderboard p99 rose from 353 to 548 ms.
    drain_window_seconds: float = 0.15
    # How many drain jobs may run at once: one always; more only while a backlog lasts.
    drain_slots: int = 2
    # Scheduler: how often it sweeps the inbox for rows whose job was lost.
    sweep_interval_seconds: int = 5
    stale_after_seconds: int = 30
    # Leagues: how long after a week ends (tenant zone) the scheduler closes it, so awards
    # applied in the week's last moments are in the ledger before it is ranked.
    league_close_grace_seconds: int = 300
    web_workers: int = 2
    # Threads per gunicorn worker. A durable ingest spends most of its wall time waiting on
    # PostgreSQL's commit flush; threads overlap those waits (and PostgreSQL groups the
    # concurrent flushes), where one sync worker would idle through each. 1 = sync workers.
    web_threads: int = 8
    # The learner dashboard's daily goal (XP per local day) when the rule set has no goals.
    daily_goal_xp: int = 50
    # host:port where `questline worker` serves its own Prometheus metrics; unset = off.
    worker_metrics_address: str | None = None
    log_level: str = "INFO"
    log_json: bool = True
    # Webhook receivers: the largest body a sender may post (413 beyond), default 1 MiB.
    webhook_max_body_bytes: int = 1024 * 1024
    # Outbound webhooks may call loopback, private and link-local addresses (development,
    # on-premises receivers). Off: such URLs are refused (server-side request forgery).
    outbound_allow_private: bool = False
    # The public base URL (https://questline.example.org) that `connections create` prints and
    # that HubSpot signs; unset = the URL as the request arrived.
    public_url: str | None = None
    # Seconds a platform's LTI key set (JWKS) is cached before it is fetched again.
    lti_jwks_cache_seconds: int = 3600
    # How often `questline scheduler` syncs LTI rosters (NRPS) and posts grades (AGS); 0 = never.
    lti_roster_sync_seconds: int = 3600
    lti_grades_sync_seconds: int = 900
    # Identity (issue 8). SHA-256 hex digests of platform operator keys (`questline operators
    # new-key` prints a key and its digest), comma-separated; empty = no operator API.
    operator_key_hashes: tuple[str, ...] = ()
    # Retention: raw bodies of processed inbox events older than this many days are emptied by
    # `questline privacy purge` (and the scheduler, daily); 0 = keep them for the tenant's life.
    retention_days: int = 365
    # How often `questline scheduler` looks for learners to nudge (streak at risk, a badge one
    # step away, a league's demotion zone; at most one nudge per learner per day); 0 = never.
    nudge_scan_seconds: int = 900

    @property
    def embedded(self) -> bool:
        """True when there is no Redis server: jobs inline, Redis emulated in-process."""
        return self.redis_url is None


_PARSERS: Mapping[str, Callable[[str], Any]] = {
    "database_url": str,
    "redis_url": _optional,
    "redis_prefix": str,
    "queue_name": str,
    "secret_key": str,
    "default_timezone": _zone,
    "max_batch": _int,
    "max_body_bytes": _int,
    "job_batch_size": _int,
    "max_attempts": _int,
    "drain_linger_seconds": _float,
    "drain_window_seconds": _float,
    "drain_slots": _int,
    "retry_base_seconds": _int,
    "sweep_interval_seconds": _int,
    "stale_after_seconds": _int,
    "league_close_grace_seconds": _int,
    "web_workers": _int,
    "web_threads": _int,
    "daily_goal_xp": _int,
    "worker_metrics_address": _address,
    "log_level": str.upper,
    "log_json": _bool,
    "webhook_max_body_bytes": _int,
    "outbound_allow_private": _bool,
    "public_url": _optional,
    "lti_jwks_cache_seconds": _int,
    "lti_roster_sync_seconds": _int,
    "lti_grades_sync_seconds": _int,
    "operator_key_hashes": _sha256_list,
    "retention_days": _days,
    "nudge_scan_seconds": _int,
}

_POSITIVE = {
    "max_batch",
    "max_body_bytes",
    "job_batch_size",
    "max_attempts",
    "drain_slots",
    "web_workers",
    "web_threads",
    "daily_goal_xp",
    "sweep_interval_seconds",
    "stale_after_seconds",
    "webhook_max_body_bytes",
    "lti_jwks_cache_seconds",
}
_NON_NEGATIVE = {"drain_linger_seconds", "drain_window_seconds"}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from the environment (or ``environ``); ``overrides`` win over both."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = PREFIX + f.name.upper()
        if name not in env:
            continue
        try:
            values[f.name] = _PARSERS[f.name](env[name])
        except ValueError as exc:
            raise SettingsError(f"{name}={env[name]!r}: {exc}") from exc
    values.update(overrides)
    for key in _POSITIVE:
        if key in values and int(values[key]) <= 0:
            raise SettingsError(f"{PREFIX}{key.upper()} must be a positive integer")
    for key in _NON_NEGATIVE:
        if key in values and not float(values[key]) >= 0:  # also refuses NaN
            raise SettingsError(f"{PREFIX}{key.upper()} must be a number of seconds >= 0")
    return replace(Settings(), **values)
