"""The SSO settings API: validation with clear 4xx messages, the secret never echoed, audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from identity.models import SsoConfig
from questline.db import Database
from tests.conftest import TenantHandle

GOOD = {"issuer": "https://idp.acme.test", "client_id": "questline", "client_secret": "s3cret"}


def put(client: Any, tenant: TenantHandle, body: Any) -> Any:
    return client.put("/api/v1/identity/sso", json=body, headers=tenant.auth)


def test_configure_read_and_update(client: Any, tenant: TenantHandle, db: Database) -> None:
    assert client.get("/api/v1/identity/sso", headers=tenant.auth).status_code == 404
    created = put(client, tenant, {**GOOD, "allowed_domains": "acme.test, @Corp.test"})
    assert created.status_code == 200, created.get_json()
    data = created.get_json()
    assert data["allowed_domains"] == ["acme.test", "corp.test"]
    assert data["client_secret_set"] is True and "s3cret" not in str(data)
    assert data["link_by_email"] is True and data["scopes"] == "openid email profile"
    with db.sessions() as session:
        sealed = session.scalar(
            select(SsoConfig.client_secret_sealed).where(SsoConfig.tenant_id == tenant.id)
        )
    assert sealed and "s3cret" not in sealed  # encrypted at rest
    updated = put(client, tenant, {"link_claim": "employee_id", "link_by_email": False})
    assert updated.get_json()["link_claim"] == "employee_id"
    assert updated.get_json()["issuer"] == GOOD["issuer"]
    audit = client.get("/api/v1/identity/audit", headers=tenant.auth).get_json()["entries"]
    assert [e["action"] for e in audit] == ["sso_configure", "sso_configure"]
    assert "s3cret" not in str(audit)


def test_bad_settings_are_400_with_the_reason(client: Any, tenant: TenantHandle) -> None:
    cases = [
        ({"issuer": "https://i"}, "needs client_id, client_secret"),
        ({**GOOD, "issuer": "http://idp.acme.test"}, "https"),
        ({**GOOD, "scopes": "email"}, "openid"),
        ({**GOOD, "colour": "blue"}, "unknown SSO settings: colour"),
        ({**GOOD, "link_by_email": "yes"}, "true or false"),
        ({**GOOD, "allowed_domains": 7}, "list of domain"),
        ({**GOOD, "client_id": ""}, "client_id must be"),
    ]
    for body, message in cases:
        response = put(client, tenant, body)
        assert response.status_code == 400, body
        assert message in response.get_json()["message"], (body, response.get_json())
    assert put(client, tenant, ["not", "an", "object"]).status_code == 400
    raw = client.put("/api/v1/identity/sso", data="{", headers=tenant.auth)
    assert raw.status_code == 400


def test_other_tenant_sees_its_own_settings_only(
    client: Any, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    assert put(client, tenant, GOOD).status_code == 200
    assert client.get("/api/v1/identity/sso", headers=other_tenant.auth).status_code == 404
    assert client.get("/api/v1/identity/audit", headers=other_tenant.auth).get_json() == {
        "entries": []
    }
