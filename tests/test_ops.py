"""Settings, /healthz and /metrics."""

from __future__ import annotations

import pytest

from questline.settings import SettingsError, load_settings
from tests.conftest import dead_redis, event


def test_settings_read_prefixed_env_with_types():
    s = load_settings(
        {
            "QUESTLINE_MAX_BATCH": "50",
            "QUESTLINE_LOG_JSON": "off",
            "QUESTLINE_REDIS_URL": "redis://x:6379/0",
            "QUESTLINE_DEFAULT_TIMEZONE": "Asia/Kolkata",
        }
    )
    assert (s.max_batch, s.log_json, s.embedded, s.default_timezone) == (
        50,
        False,
        False,
        "Asia/Kolkata",
    )
    assert load_settings({}).embedded is True
    assert load_settings({"QUESTLINE_REDIS_URL": ""}).embedded is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QUESTLINE_MAX_BATCH": "many"}, "QUESTLINE_MAX_BATCH='many'"),
        ({"QUESTLINE_MAX_BATCH": "0"}, "QUESTLINE_MAX_BATCH must be a positive integer"),
        ({"QUESTLINE_LOG_JSON": "maybe"}, "QUESTLINE_LOG_JSON='maybe'"),
        ({"QUESTLINE_DEFAULT_TIMEZONE": "Moon/Base"}, "not an IANA time zone"),
        ({"QUESTLINE_WORKER_METRICS_ADDRESS": "9100"}, "expected host:port"),
    ],
)
def test_bad_settings_fail_with_the_variable_named(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(env)


def test_healthz_reports_both_services(client):
    data = client.get("/healthz").get_json()
    assert data["status"] == "ok"
    assert data["database"] == {"ok": True, "dialect": "postgresql"}
    assert data["redis"] == {"ok": True, "embedded": False}


def test_healthz_is_503_when_redis_is_down(client, app):
    ctx = app.extensions["questline"]
    healthy = ctx.redis
    ctx.redis = dead_redis()
    try:
        response = client.get("/healthz")
    finally:
        ctx.redis = healthy
    assert response.status_code == 503
    assert response.get_json()["redis"]["ok"] is False
    assert response.get_json()["database"]["ok"] is True


def test_metrics_count_events(client, tenant):
    client.post("/api/v1/events", json=[event("a"), event("a"), {"id": "bad"}], headers=tenant.auth)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'questline_inbox_events{status="applied"} 1' in text
    assert 'questline_inbox_events{status="pending"} 0' in text
    for name in (
        'questline_events_received_total{source="api"}',
        "questline_events_duplicate_total",
        "questline_events_rejected_total",
        "questline_events_applied_total",
        "questline_ingest_seconds_bucket",
        "questline_event_latency_seconds_bucket",
        "questline_queue_jobs 0",
    ):
        assert name in text


def test_unknown_route_is_json_404(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_wrong_method_is_json_405(client):
    response = client.get("/api/v1/events")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_home_page_without_demo(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Questline" in response.get_data(as_text=True)
