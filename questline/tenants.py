"""Tenants and their API keys. A key is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from questline.models import ApiKey, Tenant

KEY_PREFIX = "ql_"
_CACHE_SECONDS = 30.0


class TenantExists(ValueError):
    """A tenant with that name already exists."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_tenant(session: Session, name: str, timezone: str = "UTC") -> tuple[Tenant, str]:
    """Create a tenant and its first API key; return the key in clear, the only time it exists."""
    name = name.strip()
    if not name:
        raise ValueError("a tenant needs a name")
    if session.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
        raise TenantExists(name)
    tenant = Tenant(name=name, timezone=timezone)
    session.add(tenant)
    session.flush()
    return tenant, issue_key(session, tenant.id)


def issue_key(session: Session, tenant_id: int, label: str = "default") -> str:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(tenant_id=tenant_id, key_hash=hash_key(key), prefix=key[:8], label=label))
    session.flush()
    return key


class KeyCache:
    """Key hash -> tenant id, cached briefly so ingest does not query keys on every request.

    A revoked key keeps working for at most ``_CACHE_SECONDS`` in a running process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, float]] = {}

    def cached(self, key: str) -> int | None:
        """The tenant of ``key`` if it was looked up in the last ``_CACHE_SECONDS``: the hot
        path answers without opening a database session."""
        hit = self._entries.get(hash_key(key))
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def tenant_for(self, session: Session, key: str) -> int | None:
        digest = hash_key(key)
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        tenant_id = session.scalar(
            select(ApiKey.tenant_id).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
        )
        if tenant_id is not None:
            with self._lock:
                self._entries[digest] = (tenant_id, now + _CACHE_SECONDS)
        return tenant_id
