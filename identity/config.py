"""Per-tenant SSO settings: validated once here, used by the CLI and the admin API alike."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity.crypto import seal
from identity.linking import audit
from identity.models import SsoConfig
from questline.errors import BadRequest, NotFound
from questline.models import Tenant

FIELDS = (
    "issuer",
    "client_id",
    "client_secret",
    "scopes",
    "allowed_domains",
    "link_by_email",
    "link_claim",
    "roles_claim",
    "admin_group",
    "api_audience",
)


def find_tenant(session: Session, ref: str | int) -> Tenant:
    """A tenant by id or exact name (URLs and the CLI accept either)."""
    text = str(ref).strip()
    tenant = None
    if text.isdigit():
        tenant = session.get(Tenant, int(text))
    if tenant is None:
        tenant = session.scalar(select(Tenant).where(Tenant.name == text))
    if tenant is None:
        raise NotFound(f"no tenant {text!r}")
    return tenant


def sso_config(session: Session, tenant_id: int) -> SsoConfig | None:
    return session.scalar(select(SsoConfig).where(SsoConfig.tenant_id == tenant_id))


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise BadRequest(f"unknown SSO settings: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("link_claim", "admin_group", "api_audience") and value in (None, ""):
            out[key] = None
        elif key == "link_by_email":
            if not isinstance(value, bool):
                raise BadRequest("link_by_email must be true or false")
            out[key] = value
        elif key == "allowed_domains":
            if isinstance(value, str):
                value = [d for d in value.replace(",", " ").split() if d]
            if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
                raise BadRequest("allowed_domains must be a list of domain names")
            out[key] = sorted({d.strip().lower().lstrip("@") for d in value if d.strip()})
        else:
            if not isinstance(value, str) or not value.strip() or len(value) > 500:
                raise BadRequest(f"{key} must be a non-empty string of at most 500 characters")
            out[key] = value.strip()
    if "issuer" in out:
        parts = urlsplit(out["issuer"])
        loopback = parts.hostname in ("127.0.0.1", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise BadRequest("issuer must be an https URL (http only on 127.0.0.1, for tests)")
        if parts.query or parts.fragment:
            raise BadRequest("issuer must not have a query or fragment")
    if "scopes" in out and "openid" not in out["scopes"].split():
        raise BadRequest("scopes must include openid")
    return out


def configure_sso(
    session: Session, tenant_id: int, values: dict[str, Any], actor: str, *, secret_key: str
) -> SsoConfig:
    """Create or update the tenant's SSO settings; issuer, client id and secret are required
    the first time."""
    clean = _clean(values)
    config = sso_config(session, tenant_id)
    if config is None:
        missing = [k for k in ("issuer", "client_id", "client_secret") if k not in clean]
        if missing:
            raise BadRequest(f"the first SSO configuration needs {', '.join(missing)}")
        config = SsoConfig(
            tenant_id=tenant_id,
            scopes="openid email profile",
            allowed_domains=[],
            link_by_email=True,
            roles_claim="groups",
        )
        session.add(config)
    for key, value in clean.items():
        if key == "client_secret":
            config.client_secret_sealed = seal(secret_key, value)
        else:
            setattr(config, key, value)
    session.flush()
    changed = sorted(k for k in clean if k != "client_secret")
    audit(session, tenant_id, "sso_configure", actor, None, fields=changed)
    return config


def config_json(config: SsoConfig) -> dict[str, Any]:
    """The settings as an admin sees them: never the client secret."""
    return {
        "issuer": config.issuer,
        "client_id": config.client_id,
        "client_secret_set": bool(config.client_secret_sealed),
        "scopes": config.scopes,
        "allowed_domains": list(config.allowed_domains or []),
        "link_by_email": config.link_by_email,
        "link_claim": config.link_claim,
        "roles_claim": config.roles_claim,
        "admin_group": config.admin_group,
        "api_audience": config.api_audience,
    }
