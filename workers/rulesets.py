"""Rule sets in the database: read a document (YAML or JSON), store versions, activate one, and
load a tenant's active rule book for the engine.

Stored documents are never edited: a change is a new version. Parsed rule sets are cached by
content for the life of the process, so a worker does not re-validate per batch.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.rules import DEFAULT_RULES, InvalidRules, RuleBook, RuleSet, parse_rules
from questline.models import RuleAudit, Tenant
from questline.models import RuleSet as RuleSetRow

_DEFAULT = parse_rules(DEFAULT_RULES)
_CACHE_LIMIT = 512
_cache: dict[tuple[str, str], RuleSet] = {}
_cache_lock = threading.Lock()


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``on``/``off``/``yes``/``no`` as booleans, which would turn every rule's
    ``on:`` key into ``True``. Only ``true``/``false`` are booleans here."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _plain(value: Any) -> Any:
    """YAML dates and times become ISO text, so the stored document is JSON."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_document(text: str) -> Any:
    """A rule document from YAML or JSON text (JSON is YAML, but its errors read better)."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidRules([f"$: not valid JSON: {exc}"]) from None
    try:
        return _plain(yaml.load(text, Loader=_Loader))  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidRules([f"$: not valid YAML: {exc}".replace("\n", " ")]) from None


def _parsed(document: Any, course: str | None) -> RuleSet:
    """Parse, cached by content: the same document always parses to the same rule set, and
    keying by content (not row id) stays right across databases and rolled-back rows."""
    key = ("course" if course else "tenant", json.dumps(document, sort_keys=True))
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    parsed = parse_rules(document, scope=key[0])  # type: ignore[arg-type]
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = parsed
    return parsed


def active_rule_book(
    session: Session, tenant_id: int, courses: Iterable[str | None] | None = None
) -> RuleBook:
    """The tenant's active rules; course sets for ``courses`` (every course when None)."""
    stmt = select(RuleSetRow.course, RuleSetRow.document).where(
        RuleSetRow.tenant_id == tenant_id, RuleSetRow.active.is_(True)
    )
    if courses is not None:
        wanted = sorted({c for c in courses if c is not None})
        stmt = stmt.where(RuleSetRow.course.is_(None) | RuleSetRow.course.in_(wanted))
    tenant = _DEFAULT
    course_sets: dict[str, RuleSet] = {}
    for course, document in session.execute(stmt.order_by(RuleSetRow.version)):
        if course is None:
            tenant = _parsed(document, None)
        else:
            course_sets[course] = _parsed(document, course)
    return RuleBook(tenant, course_sets)


def active_rules(session: Session, tenant_id: int) -> RuleSet:
    """The tenant-wide active rule set; the defaults when the tenant has none."""
    return active_rule_book(session, tenant_id, courses=()).tenant


@dataclass(frozen=True)
class StoredVersion:
    tenant_id: int
    course: str | None
    version: int
    active: bool
    created_at: datetime | None
    document: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "course": self.course,
            "version": self.version,
            "active": self.active,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "document": self.document,
        }


def store_version(
    session: Session,
    tenant_id: int,
    document: Any,
    *,
    course: str | None,
    actor: str,
    activate: bool = True,
) -> int:
    """Validate, store as the next version and (by default) activate it; returns the version.

    The tenant row is locked so two concurrent loads cannot take the same version number.
    """
    parse_rules(document, scope="course" if course else "tenant")  # raises InvalidRules
    locked = select(Tenant.id).where(Tenant.id == tenant_id)
    if session.get_bind().dialect.name == "postgresql":
        locked = locked.with_for_update()
    if session.scalar(locked) is None:
        raise LookupError(f"no tenant {tenant_id}")
    scope = _scope(tenant_id, course)
    version = (session.scalar(select(func.max(RuleSetRow.version)).where(*scope)) or 0) + 1
    if activate:
        session.execute(update(RuleSetRow).where(*scope).values(active=False))
    session.add(
        RuleSetRow(
            tenant_id=tenant_id, course=course, version=version, document=document, active=activate
        )
    )
    session.add(
        RuleAudit(
            tenant_id=tenant_id,
            course=course,
            version=version,
            action="load+activate" if activate else "load",
            actor=actor,
        )
    )
    session.flush()
    return version


def activate_version(
    session: Session, tenant_id: int, version: int, *, course: str | None, actor: str
) -> None:
    """Make a stored version the active one (e.g. to roll back)."""
    scope = _scope(tenant_id, course)
    exists = session.scalar(select(RuleSetRow.id).where(*scope, RuleSetRow.version == version))
    if exists is None:
        raise LookupError(f"no version {version} for {course or 'the tenant'}")
    session.execute(update(RuleSetRow).where(*scope).values(active=False))
    session.execute(update(RuleSetRow).where(RuleSetRow.id == exists).values(active=True))
    session.add(
        RuleAudit(
            tenant_id=tenant_id, course=course, version=version, action="activate", actor=actor
        )
    )
    session.flush()


def _scope(tenant_id: int, course: str | None) -> list[Any]:
    return [
        RuleSetRow.tenant_id == tenant_id,
        RuleSetRow.course.is_(None) if course is None else RuleSetRow.course == course,
    ]


def versions(session: Session, tenant_id: int, course: str | None) -> list[StoredVersion]:
    rows = session.execute(
        select(RuleSetRow).where(*_scope(tenant_id, course)).order_by(RuleSetRow.version.desc())
    ).scalars()
    return [
        StoredVersion(r.tenant_id, r.course, r.version, r.active, r.created_at, r.document)
        for r in rows
    ]


def active_sets(session: Session, tenant_id: int) -> list[StoredVersion]:
    """Every active set of the tenant: the tenant-wide one first, then courses by name."""
    rows = session.execute(
        select(RuleSetRow).where(RuleSetRow.tenant_id == tenant_id, RuleSetRow.active.is_(True))
    ).scalars()
    out = [
        StoredVersion(r.tenant_id, r.course, r.version, r.active, r.created_at, r.document)
        for r in rows
    ]
    return sorted(out, key=lambda v: (v.course is not None, v.course or ""))
