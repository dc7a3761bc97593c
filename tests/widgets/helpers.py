"""Helpers for the widget tests: put learners on the boards through the real ingest path and
mint embed URLs through the real API."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from tests.conftest import TenantHandle, event


def ingest(client: FlaskClient, tenant: TenantHandle, events: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/events", json={"events": events}, headers=tenant.auth)
    assert response.status_code == 202, response.get_json()


def player_id(client: FlaskClient, tenant: TenantHandle, actor: str) -> int:
    response = client.get(f"/api/v1/players?actor={actor}", headers=tenant.auth)
    assert response.status_code == 200, response.get_json()
    return int(response.get_json()["players"][0]["id"])


def learners(client: FlaskClient, tenant: TenantHandle, counts: dict[str, int]) -> dict[str, int]:
    """Give each actor ``n`` completed lessons (distinct objects, one course); return ids."""
    events = [
        event(f"{actor}-{i}", actor=actor, at=f"2026-11-20T10:{i % 60:02d}:00Z")
        for actor, n in counts.items()
        for i in range(n)
    ]
    ingest(client, tenant, events)
    return {actor: player_id(client, tenant, actor) for actor in counts}


def embed(client: FlaskClient, tenant: TenantHandle, **body: Any) -> tuple[str, str]:
    """(path with query, token) of a signed widget URL minted by the API."""
    response = client.post("/api/v1/widgets/embed-url", json=body, headers=tenant.auth)
    assert response.status_code == 201, response.get_json()
    url = urlsplit(response.get_json()["url"])
    token = parse_qs(url.query)["token"][0]
    return f"{url.path}?{url.query}", token
