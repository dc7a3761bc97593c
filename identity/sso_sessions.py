"""Server-side SSO sessions: what lets Questline end a sign-in it no longer holds the cookie of.

The browser's signed cookie names a row here. The row ends on RP-initiated logout (``/sso/logout``),
on an OpenID Connect Back-Channel Logout from the provider (by ``sid``, or every session of the
``sub``), and on erasure; a cookie whose row is ended, expired or gone is treated as signed out.
Ended rows are deleted by the retention purge once they could no longer be used anyway.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity.models import SsoLogoutToken, SsoSession


def start(
    session: Session,
    *,
    tenant_id: int,
    player_id: int,
    issuer: str,
    sub: str,
    sid: str | None,
    now: datetime,
    lifetime: timedelta,
) -> str:
    """Record a new sign-in; returns the id the cookie carries."""
    session_id = secrets.token_urlsafe(32)
    session.add(
        SsoSession(
            id=session_id,
            tenant_id=tenant_id,
            player_id=player_id,
            issuer=issuer,
            sub=sub,
            sid=sid if isinstance(sid, str) and sid else None,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return session_id


def is_live(session: Session, session_id: object, tenant_id: int, now: datetime) -> bool:
    if not isinstance(session_id, str) or not session_id:
        return False
    row = session.get(SsoSession, session_id)
    return (
        row is not None
        and row.tenant_id == tenant_id
        and row.ended_at is None
        and row.expires_at > now
    )


def end(session: Session, session_id: object, now: datetime) -> None:
    if isinstance(session_id, str) and session_id:
        session.execute(
            update(SsoSession)
            .where(SsoSession.id == session_id, SsoSession.ended_at.is_(None))
            .values(ended_at=now)
        )


def end_for_logout(
    session: Session,
    *,
    tenant_id: int,
    issuer: str,
    sub: str | None,
    sid: str | None,
    now: datetime,
) -> int:
    """End what a logout token names: the sessions with that ``sid`` (and that ``sub`` when both
    are given), or, with only a ``sub``, every session of that subject at this provider."""
    query = update(SsoSession).where(
        SsoSession.tenant_id == tenant_id,
        SsoSession.issuer == issuer,
        SsoSession.ended_at.is_(None),
    )
    if sid:
        query = query.where(SsoSession.sid == sid)
    if sub:
        query = query.where(SsoSession.sub == sub)
    done = session.execute(query.values(ended_at=now))
    return int(getattr(done, "rowcount", 0) or 0)


def first_use_of(session: Session, issuer: str, jti: str, now: datetime) -> bool:
    """Record a logout token's ``jti``; False if this issuer's token was seen before (replay)."""
    try:
        with session.begin_nested():
            session.add(SsoLogoutToken(issuer=issuer, jti=jti, seen_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


def purge_ended(session: Session, now: datetime, keep: timedelta) -> int:
    """Delete sessions ended or expired more than ``keep`` ago, and logout jtis as old: a
    logout token older than ``backchannel.MAX_AGE`` is refused anyway, so its jti is no
    longer needed to spot a replay."""
    cutoff = now - keep
    gone = session.execute(
        delete(SsoSession).where(or_(SsoSession.ended_at < cutoff, SsoSession.expires_at < cutoff))
    )
    session.execute(delete(SsoLogoutToken).where(SsoLogoutToken.seen_at < cutoff))
    return int(getattr(gone, "rowcount", 0) or 0)
