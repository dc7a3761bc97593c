"""pylti1p3's tool configuration, read from our tables instead of a JSON file.

This is the one place pylti1p3 learns about registrations and deployments. Every issuer may
have several client ids (a Canvas instance and its test copy, or two tenants on one Moodle), so
lookups always go by (issuer, client id). Platform key sets come from ``JwksCache``: fetched
once, kept for ``ttl`` seconds, fetched again early only when a token names a kid we do not have
(the platform rotated), and never more than once per ``refetch_interval`` for one URL; each key
is parsed once per fetch (a JWK -> PEM -> key object conversion per launch cost more than the
signature check). Registrations are read through ``RegistrationCache`` (per process, a short
TTL): a login or launch reads none from the database; what must be exact at launch (the
deployment is still registered) is checked by the launch's one write statement instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from pylti1p3.deployment import Deployment
from pylti1p3.registration import Registration
from pylti1p3.request import Request
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti.errors import LtiRejected, rejected
from lti.models import LtiDeployment, LtiRegistration

FETCH_TIMEOUT_SECONDS = 5


class JwksCache:
    """Platform JWKS by URL, shared by every request of one app (process)."""

    def __init__(self, ttl: float = 3600.0, refetch_interval: float = 30.0) -> None:
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.fetches = 0
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        # Parsed keys by (url, kid, alg), valid for the entry (fetch time) they came from.
        self._parsed: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._http = requests.Session()

    def public_key(self, url: str, kid: str, alg: str, *, refresh: bool = False) -> Any | None:
        """The key object for ``kid`` (and ``alg``) in the key set at ``url``, parsed once per
        fetch of that set; None when the set has no such key."""
        keys = self.get(url, refresh=refresh)
        with self._lock:
            fetched_at = self._entries[url][0]
            cached = self._parsed.get((url, kid, alg))
        if cached is not None and cached[0] == fetched_at:
            return cached[1]
        for jwk in keys["keys"]:
            if isinstance(jwk, dict) and jwk.get("kid") == kid and jwk.get("alg", "RS256") == alg:
                try:
                    key = jwt.PyJWK.from_json(json.dumps(jwk)).key
                except (jwt.PyJWKError, ValueError, TypeError):
                    return None
                with self._lock:
                    self._parsed[(url, kid, alg)] = (fetched_at, key)
                return key
        return None

    def get(self, url: str, *, refresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(url)
        if entry is not None:
            age = now - entry[0]
            if age < self.ttl and not (refresh and age >= self.refetch_interval):
                return entry[1]
        # One fetch at a time: the threads of a worker that all miss (start-up, a rotation)
        # wait for the first one's answer instead of each fetching the same set.
        with self._fetching:
            with self._lock:
                entry = self._entries.get(url)
            if entry is not None and entry[0] > now:  # fetched while this thread waited
                return entry[1]
            keys = self._fetch(url)
            with self._lock:
                self._entries[url] = (time.monotonic(), keys)
        return keys

    def _fetch(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        try:
            response = self._http.get(url, timeout=FETCH_TIMEOUT_SECONDS)
            response.raise_for_status()
            keys = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise LtiRejected(
                "platform_keys_unavailable",
                f"the platform's key set at {url} could not be fetched: {exc}",
                status=502,
            ) from None
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise LtiRejected(
                "platform_keys_unavailable",
                f"the platform's key set at {url} is not a JWKS document",
                status=502,
            )
        return keys


# How long a process trusts its copy of the registrations. Changes made by `questline lti
# register` or dynamic registration in another process reach every launch within this time;
# a removed deployment is refused at once (the launch's write checks it in the database).
REGISTRATION_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class RegistrationRow:
    """The columns of an ``lti_registrations`` row a login or launch needs, detached from
    any session so a process can keep it between requests."""

    id: int
    tenant_id: int
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    auth_audience: str | None


class RegistrationCache:
    """Registrations by issuer, per process, re-read after ``ttl`` seconds. An issuer nobody
    registered is cached too (briefly), so junk logins cost no query each."""

    def __init__(self, ttl: float = REGISTRATION_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self.loads = 0
        self._lock = threading.Lock()
        self._by_issuer: dict[str, tuple[float, tuple[RegistrationRow, ...]]] = {}

    def rows(self, session: Session, issuer: str) -> tuple[RegistrationRow, ...]:
        now = time.monotonic()
        with self._lock:
            entry = self._by_issuer.get(issuer)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        self.loads += 1
        found = tuple(
            RegistrationRow(*row)
            for row in session.execute(
                select(
                    LtiRegistration.id,
                    LtiRegistration.tenant_id,
                    LtiRegistration.issuer,
                    LtiRegistration.client_id,
                    LtiRegistration.auth_login_url,
                    LtiRegistration.auth_token_url,
                    LtiRegistration.key_set_url,
                    LtiRegistration.auth_audience,
                ).where(LtiRegistration.issuer == issuer)
            )
        )
        with self._lock:
            if len(self._by_issuer) > 10_000:  # junk issuers must not grow it without bound
                self._by_issuer.clear()
            self._by_issuer[issuer] = (now, found)
        return found

    def forget(self, issuer: str) -> None:
        with self._lock:
            self._by_issuer.pop(issuer, None)


class QuestlineRegistration(Registration):  # type: ignore[misc]
    """pylti1p3's registration plus our row's id and tenant. The tool's private key is only
    decrypted when something is signed (deep linking, service tokens), not on every launch."""

    def __init__(
        self,
        row: LtiRegistration | RegistrationRow,
        private_key: Callable[[], tuple[str, str]] | None,
    ) -> None:
        super().__init__()
        self.id = row.id
        self.tenant_id = row.tenant_id
        self._private_key_loader = private_key
        self._kid: str | None = None
        self.set_issuer(row.issuer).set_client_id(row.client_id).set_auth_login_url(
            row.auth_login_url
        ).set_auth_token_url(row.auth_token_url).set_key_set_url(row.key_set_url)
        if row.auth_audience:
            self.set_auth_audience(row.auth_audience)

    def _load_key(self) -> None:
        if self._tool_private_key is None and self._private_key_loader is not None:
            self._kid, pem = self._private_key_loader()
            self.set_tool_private_key(pem)

    def get_tool_private_key(self) -> str | None:
        self._load_key()
        return self._tool_private_key  # type: ignore[no-any-return]

    def get_kid(self) -> str | None:
        self._load_key()
        return self._kid


class DbToolConf(ToolConfAbstract[Request]):  # type: ignore[misc]
    """Registrations and deployments from the database, for one request's session."""

    def __init__(
        self,
        session: Session,
        jwks: JwksCache,
        private_key: Callable[[], tuple[str, str]] | None = None,
        registrations: RegistrationCache | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.jwks = jwks
        self._private_key = private_key
        self._registrations = registrations
        self._found: dict[tuple[str, str | None], QuestlineRegistration] = {}

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(
        self, iss: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> QuestlineRegistration:
        """The registration for (iss, client id); the client id may be left out at login when
        the issuer has exactly one. Raises a typed rejection naming what did not match."""
        cache_key = (iss, client_id)
        if cache_key in self._found:
            return self._found[cache_key]
        rows: list[LtiRegistration] | tuple[RegistrationRow, ...]
        if self._registrations is not None:
            rows = self._registrations.rows(self.session, iss)
        else:
            rows = list(
                self.session.scalars(select(LtiRegistration).where(LtiRegistration.issuer == iss))
            )
        if not rows:
            raise rejected("wrong_issuer", f"no platform with issuer {iss!r} is registered")
        if client_id is None:
            if len(rows) != 1:
                raise rejected(
                    "wrong_audience",
                    f"issuer {iss!r} has several registrations; the platform must send client_id",
                )
            row = rows[0]
        else:
            matching = [r for r in rows if r.client_id == client_id]
            if not matching:
                raise rejected(
                    "wrong_audience",
                    f"client id {client_id!r} is not registered for issuer {iss!r}",
                )
            row = matching[0]
        registration = QuestlineRegistration(row, self._private_key)
        self._found[cache_key] = registration
        return registration

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> Deployment | None:
        registration = self.find_registration_by_params(iss, client_id)
        found = self.session.scalar(
            select(LtiDeployment.id).where(
                LtiDeployment.registration_id == registration.id,
                LtiDeployment.deployment_id == deployment_id,
            )
        )
        if found is None:
            return None
        return Deployment().set_deployment_id(deployment_id)
