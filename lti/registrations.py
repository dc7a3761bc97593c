"""Creating and finding platform registrations (manual, and later dynamic)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti.models import LtiDeployment, LtiRegistration
from questline.models import Tenant


class InvalidRegistration(ValueError):
    """A registration value we cannot use; the message names the field."""


def _url(name: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise InvalidRegistration(f"{name} must be an http(s) URL, not {value!r}")
    return value


def find_tenant(session: Session, ref: str) -> Tenant:
    """A tenant by id or by name."""
    tenant = session.get(Tenant, int(ref)) if ref.isdigit() else None
    if tenant is None:
        tenant = session.scalar(select(Tenant).where(Tenant.name == ref))
    if tenant is None:
        raise InvalidRegistration(f"no tenant {ref!r}")
    return tenant


def register_platform(
    session: Session,
    *,
    tenant_id: int,
    issuer: str,
    client_id: str,
    deployment_ids: Iterable[str],
    auth_login_url: str,
    auth_token_url: str,
    key_set_url: str,
    auth_audience: str | None = None,
    method: str = "manual",
) -> LtiRegistration:
    """Create the registration, or update its URLs and add deployments if it exists. The
    issuer + client id pair belongs to one tenant for good: moving it would move players."""
    if not issuer.strip() or not client_id.strip():
        raise InvalidRegistration("issuer and client id are required")
    _url("issuer", issuer)
    for name, value in (
        ("auth login URL", auth_login_url),
        ("auth token URL", auth_token_url),
        ("key set URL", key_set_url),
    ):
        _url(name, value)
    row = session.scalar(
        select(LtiRegistration).where(
            LtiRegistration.issuer == issuer, LtiRegistration.client_id == client_id
        )
    )
    if row is not None and row.tenant_id != tenant_id:
        raise InvalidRegistration(
            f"issuer {issuer!r} with client id {client_id!r} is registered to another tenant"
        )
    if row is None:
        row = LtiRegistration(tenant_id=tenant_id, issuer=issuer, client_id=client_id)
        session.add(row)
    row.auth_login_url = auth_login_url
    row.auth_token_url = auth_token_url
    row.key_set_url = key_set_url
    row.auth_audience = auth_audience
    row.method = method
    session.flush()
    known = set(
        session.scalars(
            select(LtiDeployment.deployment_id).where(LtiDeployment.registration_id == row.id)
        )
    )
    for deployment_id in deployment_ids:
        deployment_id = deployment_id.strip()
        if deployment_id and deployment_id not in known:
            session.add(LtiDeployment(registration_id=row.id, deployment_id=deployment_id))
            known.add(deployment_id)
    session.flush()
    return row
