"""One person, one player: the rules that join identities, and the admin tools that fix them.

A player has many identities (``questline.models.PlayerIdentity``): ``actor`` ids from events
(LTI subjects, CRM owner ids, API actors), ``email``, ``sso`` (issuer + subject), ``employee``
(an employee or SIS id). An SSO login joins an existing player only by, in order:

1. the same SSO subject (a returning user);
2. the tenant's employee / SIS id claim, when configured and present;
3. the email, when the tenant allows it AND the provider says ``email_verified`` is true.

Nothing else ever joins two players: an unverified email is neither matched nor stored, so a
person who can type someone else's address at a sloppy IdP gets a fresh player of their own.
Admins can link, unlink and merge explicitly; every change is written to ``identity_audit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity.errors import Conflict
from identity.models import IdentityAudit, SsoConfig
from questline.errors import BadRequest, NotFound
from questline.models import Player, PlayerIdentity

KINDS = ("actor", "email", "sso", "employee")


def sso_value(issuer: str, subject: str) -> str:
    """The ``sso`` identity value: subjects are only unique per issuer (OIDC Core 2)."""
    return f"{issuer}|{subject}"


def normalise(kind: str, value: str) -> str:
    value = value.strip()
    return value.lower() if kind == "email" else value


def email_is_verified(claims: dict[str, Any]) -> bool:
    """True only for an explicit yes. Some providers send the string "true"; absent is no."""
    flag = claims.get("email_verified")
    return flag is True or (isinstance(flag, str) and flag.lower() == "true")


def audit(
    session: Session,
    tenant_id: int,
    action: str,
    actor: str,
    player_id: int | None,
    **detail: Any,
) -> None:
    session.add(
        IdentityAudit(
            tenant_id=tenant_id, player_id=player_id, action=action, actor=actor, detail=detail
        )
    )


def holder(session: Session, tenant_id: int, kind: str, value: str) -> int | None:
    """The player holding identity (kind, value) in this tenant, if any."""
    return session.scalar(
        select(PlayerIdentity.player_id).where(
            PlayerIdentity.tenant_id == tenant_id,
            PlayerIdentity.kind == kind,
            PlayerIdentity.value == value,
        )
    )


@dataclass(frozen=True)
class LoginLink:
    """Who an SSO login turned out to be, and by which rule."""

    player_id: int
    rule: str  # "sso", "employee_claim", "verified_email" or "new_player"
    email_verified: bool


def _claim_text(claims: dict[str, Any], name: str | None) -> str | None:
    if not name:
        return None
    value = claims.get(name)
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


def _by_player_email(session: Session, tenant_id: int, email: str) -> int | None:
    """A player whose stored email (from LMS/API events) is ``email``, if exactly one is."""
    ids = session.scalars(
        select(Player.id)
        .where(Player.tenant_id == tenant_id, func.lower(Player.email) == email)
        .limit(2)
    ).all()
    return ids[0] if len(ids) == 1 else None


def link_sso_login(
    session: Session, tenant_id: int, config: SsoConfig, claims: dict[str, Any]
) -> LoginLink:
    """Find or create the player behind validated SSO claims and record the identities."""
    sso = sso_value(str(claims["iss"]), str(claims["sub"]))
    verified = email_is_verified(claims)
    raw_email = claims.get("email")
    email = normalise("email", raw_email) if isinstance(raw_email, str) and raw_email else None
    employee = _claim_text(claims, config.link_claim)

    player_id = holder(session, tenant_id, "sso", sso)
    rule = "sso"
    if player_id is None and employee is not None:
        player_id, rule = holder(session, tenant_id, "employee", employee), "employee_claim"
    if player_id is None and config.link_by_email and verified and email:
        player_id = holder(session, tenant_id, "email", email) or _by_player_email(
            session, tenant_id, email
        )
        rule = "verified_email"
    if player_id is None:
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        player = Player(
            tenant_id=tenant_id,
            display_name=(name or (email or "").split("@")[0] or "SSO user")[:200],
            email=email if verified else None,
        )
        session.add(player)
        session.flush()
        player_id, rule = player.id, "new_player"

    wanted = [("sso", sso)]
    if employee is not None:
        wanted.append(("employee", employee))
    if verified and email:
        wanted.append(("email", email))
    added = []
    for kind, value in wanted:
        owner = holder(session, tenant_id, kind, value)
        if owner == player_id:
            continue
        if owner is not None:
            # Held by someone else: never move it silently; an admin decides (merge or unlink).
            audit(session, tenant_id, "link_conflict", "sso", player_id, kind=kind, held_by=owner)
            continue
        try:
            with session.begin_nested():
                session.add(
                    PlayerIdentity(tenant_id=tenant_id, player_id=player_id, kind=kind, value=value)
                )
        except IntegrityError:
            continue  # a concurrent login inserted it first; the next login sees it
        added.append(kind)
    if added:
        audit(session, tenant_id, "sso_link", "sso", player_id, rule=rule, kinds=added)
    return LoginLink(player_id=player_id, rule=rule, email_verified=verified)


def _player(session: Session, tenant_id: int, player_id: int) -> Player:
    player = session.scalar(
        select(Player).where(Player.tenant_id == tenant_id, Player.id == player_id)
    )
    if player is None:
        raise NotFound(f"no player {player_id} in this tenant")
    return player


def link_identity(
    session: Session, tenant_id: int, player_id: int, kind: str, value: str, actor: str
) -> PlayerIdentity:
    """An admin's explicit link. Refuses an identity another player holds (merge instead)."""
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(value, str) or not value.strip() or len(value) > 512:
        raise BadRequest("value must be a non-empty string of at most 512 characters")
    value = normalise(kind, value)
    _player(session, tenant_id, player_id)
    owner = holder(session, tenant_id, kind, value)
    if owner == player_id:
        raise Conflict(f"player {player_id} already has that {kind} identity")
    if owner is not None:
        raise Conflict(
            f"that {kind} identity belongs to player {owner}; merge the two players instead"
        )
    identity = PlayerIdentity(tenant_id=tenant_id, player_id=player_id, kind=kind, value=value)
    session.add(identity)
    session.flush()
    audit(session, tenant_id, "link", actor, player_id, kind=kind, identity_id=identity.id)
    return identity


def unlink_identity(
    session: Session, tenant_id: int, player_id: int, identity_id: int, actor: str
) -> None:
    """Remove one identity: future events or logins carrying it make or find another player."""
    identity = session.scalar(
        select(PlayerIdentity).where(
            PlayerIdentity.tenant_id == tenant_id,
            PlayerIdentity.player_id == player_id,
            PlayerIdentity.id == identity_id,
        )
    )
    if identity is None:
        raise NotFound(f"player {player_id} has no identity {identity_id}")
    session.delete(identity)
    audit(
        session, tenant_id, "unlink", actor, player_id, kind=identity.kind, identity_id=identity_id
    )
    session.flush()


def identities_json(session: Session, tenant_id: int, player_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(PlayerIdentity)
        .where(PlayerIdentity.tenant_id == tenant_id, PlayerIdentity.player_id == player_id)
        .order_by(PlayerIdentity.id)
    )
    return [{"id": i.id, "kind": i.kind, "value": i.value} for i in rows]


def move_identities(session: Session, tenant_id: int, source: int, target: int) -> int:
    result = session.execute(
        update(PlayerIdentity)
        .where(PlayerIdentity.tenant_id == tenant_id, PlayerIdentity.player_id == source)
        .values(player_id=target)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
