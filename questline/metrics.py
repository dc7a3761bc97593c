"""Prometheus metrics. Counters and histograms are process-local unless
``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn and workers then share one directory and
``/metrics`` aggregates them); queue depth is read at scrape time from the inbox itself.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

EVENTS_RECEIVED = Counter(
    "questline_events_received_total", "Events accepted and stored in the inbox", ["source"]
)
EVENTS_DUPLICATE = Counter(
    "questline_events_duplicate_total", "Events received again under an id already stored"
)
EVENTS_REJECTED = Counter("questline_events_rejected_total", "Events refused as invalid")
EVENTS_APPLIED = Counter("questline_events_applied_total", "Events applied by the engine")
EVENTS_FAILED = Counter(
    "questline_events_failed_total", "Event processing failures (each attempt)", ["final"]
)
INGEST_SECONDS = Histogram(
    "questline_ingest_seconds",
    "Time to validate and durably store one ingest request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
EVENT_LATENCY_SECONDS = Histogram(
    "questline_event_latency_seconds",
    "From receipt to applied and on the leaderboard",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BATCH_SECONDS = Histogram(
    "questline_batch_seconds",
    "Time to process one claimed batch of inbox rows",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REDIS_WRITE_ERRORS = Counter(
    "questline_redis_write_errors_total", "Leaderboard writes that failed (fixed by reconcile)"
)


def render(extra_lines: list[str]) -> tuple[bytes, str]:
    """The exposition text: our metrics (aggregated across processes if configured) + gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    if extra_lines:
        body += ("\n".join(extra_lines) + "\n").encode()
    return body, CONTENT_TYPE_LATEST
