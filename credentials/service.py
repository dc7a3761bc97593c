"""The database side: tenant keys, lazy issuance from an award, key and status look-ups.

Every query filters by tenant here (ARCHITECTURE invariant 7). URLs are built from ``base``, the
public root of this Questline (``QUESTLINE_PUBLIC_URL`` or the request's host), because the
documents must name the stable URLs they are served at.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from credentials.documents import (
    STATUS_LIST_SIZE,
    BadgeFacts,
    Recipient,
    open_badge_credential,
    status_list_credential,
)
from credentials.keys import SigningKey, multikey_method, new_key_pair, unseal
from credentials.models import IssuedCredential, IssuerKey
from credentials.multibase import ed25519_from_multikey, ed25519_multikey
from credentials.proofs import add_data_integrity_proof, sign_jwt
from questline.models import Player, PlayerBadge, RuleSet, Tenant


class NotIssuable(Exception):
    """The award does not exist in this tenant (or is not this player's)."""


def issuer_url(base: str, tenant_id: int) -> str:
    return f"{base}/ob/v3/issuers/{tenant_id}"


def status_list_url(base: str, tenant_id: int, number: int) -> str:
    return f"{issuer_url(base, tenant_id)}/status/{number}"


def credential_url(base: str, credential_uuid: str) -> str:
    return f"{base}/ob/v3/credentials/{credential_uuid}"


def badge_class_url(base: str, tenant_id: int, badge_id: str, tier: int) -> str:
    return f"{base}/ob/v2/badges/{tenant_id}/{badge_id}/{tier}"


def assertion_url(base: str, credential_uuid: str) -> str:
    return f"{base}/ob/v2/assertions/{credential_uuid}"


def tenant_keys(session: Session, tenant_id: int) -> list[IssuerKey]:
    return list(
        session.scalars(
            select(IssuerKey)
            .where(IssuerKey.tenant_id == tenant_id, IssuerKey.retired_at.is_(None))
            .order_by(IssuerKey.id)
        )
    )


def ensure_key(session: Session, tenant_id: int, secret: str) -> IssuerKey:
    """The tenant's signing key (the newest active one), created on first use."""
    keys = tenant_keys(session, tenant_id)
    if keys:
        return keys[-1]
    return add_key(session, tenant_id, secret)


def add_key(session: Session, tenant_id: int, secret: str) -> IssuerKey:
    """A new key for the tenant; it signs from now on. Older active keys stay published, so
    credentials they signed keep verifying (rotation without re-issuing)."""
    public, sealed = new_key_pair(secret)
    row = IssuerKey(
        tenant_id=tenant_id,
        multikey=ed25519_multikey(public),
        public_key=public.hex(),
        private_key_sealed=sealed,
    )
    session.add(row)
    session.flush()
    return row


def signing_key(session: Session, tenant_id: int, base: str, secret: str) -> SigningKey:
    row = ensure_key(session, tenant_id, secret)
    return SigningKey(
        unseal(row.private_key_sealed, secret), f"{issuer_url(base, tenant_id)}#{row.multikey}"
    )


def published_methods(session: Session, tenant_id: int, base: str) -> list[dict[str, str]]:
    controller = issuer_url(base, tenant_id)
    return [
        multikey_method(controller, bytes.fromhex(row.public_key))
        for row in tenant_keys(session, tenant_id)
    ]


_METHOD = re.compile(r"^(?P<issuer>.+/ob/v3/issuers/(?P<tenant>\d+))#(?P<multikey>z[1-9A-Za-z]+)$")


def key_resolver(session: Session, base: str) -> Callable[[str], bytes | None]:
    """Resolve a verification method to a raw public key: our tenants' keys (at this base URL)
    and self-certifying ``did:key`` identifiers; anything else is an unknown issuer."""

    def resolve(method: str) -> bytes | None:
        if method.startswith("did:key:"):
            did, _, fragment = method.partition("#")
            multikey = did.removeprefix("did:key:")
            if fragment and fragment != multikey:
                return None
            try:
                return ed25519_from_multikey(multikey)
            except ValueError:
                return None
        match = _METHOD.match(method)
        if match is None or match["issuer"] != issuer_url(base, int(match["tenant"])):
            return None
        row = session.scalar(
            select(IssuerKey).where(
                IssuerKey.tenant_id == int(match["tenant"]),
                IssuerKey.multikey == match["multikey"],
                IssuerKey.retired_at.is_(None),  # a retired key (say, leaked) vouches for nothing
            )
        )
        return bytes.fromhex(row.public_key) if row is not None else None

    return resolve


def retire_key(session: Session, tenant_id: int, multikey: str, now: datetime) -> bool:
    """Withdraw a key: unpublished, and what it signed no longer verifies. Use it for a leaked
    key, after ``add_key``. False when the tenant has no such active key."""
    row = session.scalar(
        select(IssuerKey).where(
            IssuerKey.tenant_id == tenant_id,
            IssuerKey.multikey == multikey,
            IssuerKey.retired_at.is_(None),
        )
    )
    if row is None:
        return False
    row.retired_at = now
    session.flush()
    return True


_STATUS = re.compile(r"^(?P<issuer>.+/ob/v3/issuers/(?P<tenant>\d+))/status/(?P<number>\d+)$")


def revoked_indexes(session: Session, tenant_id: int, number: int) -> list[int]:
    """Bit positions set in status list ``number`` (1-based) of a tenant: revoked awards."""
    low = (number - 1) * STATUS_LIST_SIZE
    rows = session.scalars(
        select(IssuedCredential.status_index)
        .join(PlayerBadge, PlayerBadge.id == IssuedCredential.award_id)
        .where(
            IssuedCredential.tenant_id == tenant_id,
            PlayerBadge.tenant_id == tenant_id,
            PlayerBadge.revoked_at.is_not(None),
            IssuedCredential.status_index >= low,
            IssuedCredential.status_index < low + STATUS_LIST_SIZE,
        )
    )
    return [index - low for index in rows]


def status_lookup(session: Session, base: str) -> Callable[[str, int], bool | None]:
    """Read a revocation bit straight from the database for our own status lists (the same
    truth the published list is built from); None for any other list."""

    def lookup(url: str, index: int) -> bool | None:
        match = _STATUS.match(url)
        if match is None or match["issuer"] != issuer_url(base, int(match["tenant"])):
            return None
        number = int(match["number"])
        if number < 1 or not 0 <= index < STATUS_LIST_SIZE:
            return None
        return index in revoked_indexes(session, int(match["tenant"]), number)

    return lookup


def signed_status_list(
    session: Session,
    tenant_id: int,
    number: int,
    base: str,
    secret: str,
    now: datetime,
    *,
    as_jwt: bool = False,
) -> dict[str, Any] | str:
    """The tenant's status list credential, signed now: Data Integrity JSON, or a VC-JWT for
    verifiers that only check JWT-secured lists."""
    key = signing_key(session, tenant_id, base, secret)
    document = status_list_credential(
        status_list_url(base, tenant_id, number),
        issuer_url(base, tenant_id),
        revoked_indexes(session, tenant_id, number),
        now,
    )
    if as_jwt:
        return sign_jwt(document, key.private, key.verification_method)
    return add_data_integrity_proof(document, key.private, key.verification_method, now)


def badge_description(session: Session, tenant_id: int, badge_id: str) -> str:
    """The badge's description from the tenant's active rule sets ('' when none says)."""
    for document in session.scalars(
        select(RuleSet.document).where(RuleSet.tenant_id == tenant_id, RuleSet.active.is_(True))
    ):
        for badge in (document or {}).get("badges") or []:
            if isinstance(badge, dict) and badge.get("id") == badge_id:
                return str(badge.get("description") or "")
    return ""


def award_row(session: Session, tenant_id: int, award_id: int) -> PlayerBadge | None:
    return session.scalar(
        select(PlayerBadge).where(PlayerBadge.tenant_id == tenant_id, PlayerBadge.id == award_id)
    )


def recipient_for(player: Player, salt: str, base: str) -> Recipient:
    if player.email:
        return Recipient(player.email.strip().lower(), "emailAddress", salt)
    return Recipient(f"{base}/players/{player.tenant_id}/{player.id}", "identifier", salt)


def achievement_text(award: PlayerBadge, tenant: Tenant, description: str) -> tuple[str, str]:
    """(name, criteria narrative) of the achievement an award stands for."""
    plain = award.tier_name in ("", award.name)
    name = award.name if plain else f"{award.name} ({award.tier_name})"
    where = "" if award.scope == "*" else f" in course {award.scope}"
    criteria = (
        f"Awarded automatically by {tenant.name}'s Questline rules{where} when a learner meets "
        f"the conditions of the '{award.name}' badge"
        + ("" if plain else f", tier {award.tier_name}")
        + "."
    )
    return name, description or criteria


def issue_for_award(
    session: Session,
    tenant_id: int,
    award_id: int,
    *,
    base: str,
    secret: str,
    now: datetime,
    player_id: int | None = None,
) -> IssuedCredential:
    """The award's credential: the stored one, or a new one signed both ways and stored.

    Issuing is idempotent per award (unique (tenant, award)); a revoked award keeps its
    credential, whose status bit says it is revoked. New credentials of one tenant are issued
    one at a time, under a row lock on the tenant, so each gets the next status list index (the
    index is inside the signed document, so it must be known before signing) and a new tenant
    gets exactly one key."""
    award = award_row(session, tenant_id, award_id)
    if award is None or (player_id is not None and award.player_id != player_id):
        raise NotIssuable(f"no award {award_id} in this tenant")
    existing = _issued(session, tenant_id, award_id)
    if existing is not None:
        return existing
    tenant = session.get(Tenant, tenant_id)
    player = session.get(Player, award.player_id)
    if tenant is None or player is None:
        raise NotIssuable(f"no award {award_id} in this tenant")
    # The lock: concurrent issuers of one tenant wait here (PostgreSQL; SQLite has one writer).
    # NO KEY UPDATE does not conflict with the KEY SHARE locks that inserts referencing the
    # tenant take, so the award pipeline never waits on a signature.
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True))
    existing = _issued(session, tenant_id, award_id)  # issued while we waited?
    if existing is not None:
        return existing
    key_row = ensure_key(session, tenant_id, secret)
    key = SigningKey(
        unseal(key_row.private_key_sealed, secret),
        f"{issuer_url(base, tenant_id)}#{key_row.multikey}",
    )
    index = session.scalar(
        select(func.coalesce(func.max(IssuedCredential.status_index) + 1, 0)).where(
            IssuedCredential.tenant_id == tenant_id
        )
    )
    row = _build(session, award, tenant, player, key, int(index or 0), base, now)
    session.add(row)
    session.flush()
    return row


def _issued(session: Session, tenant_id: int, award_id: int) -> IssuedCredential | None:
    return session.scalar(
        select(IssuedCredential).where(
            IssuedCredential.tenant_id == tenant_id, IssuedCredential.award_id == award_id
        )
    )


def _build(
    session: Session,
    award: PlayerBadge,
    tenant: Tenant,
    player: Player,
    key: SigningKey,
    index: int,
    base: str,
    now: datetime,
) -> IssuedCredential:
    credential_uuid = str(uuid.uuid4())
    salt = secrets.token_hex(16)
    name, criteria = achievement_text(
        award, tenant, badge_description(session, tenant.id, award.badge_id)
    )
    badge_url = badge_class_url(base, tenant.id, award.badge_id, award.tier)
    facts = BadgeFacts(
        credential_url=credential_url(base, credential_uuid),
        issuer_url=issuer_url(base, tenant.id),
        issuer_name=tenant.name,
        issuer_homepage=f"{base}/",
        achievement_url=badge_url,
        badge_name=name,
        description=badge_description(session, tenant.id, award.badge_id) or name,
        criteria=criteria,
        image_url=f"{badge_url}/image.png",
        explanation=award.explanation or name,
        awarded_at=award.awarded_at,
        expires_at=award.expires_at,
        recipient=recipient_for(player, salt, base),
        status_list_url=status_list_url(base, tenant.id, index // STATUS_LIST_SIZE + 1),
        status_index=index % STATUS_LIST_SIZE,
    )
    unsigned = open_badge_credential(facts)
    document = add_data_integrity_proof(unsigned, key.private, key.verification_method, now)
    return IssuedCredential(
        tenant_id=tenant.id,
        award_id=award.id,
        uuid=credential_uuid,
        status_index=index,
        salt=salt,
        document=document,
        jwt=sign_jwt(unsigned, key.private, key.verification_method),
    )


def credential_by_uuid(session: Session, credential_uuid: str) -> IssuedCredential | None:
    return session.scalar(select(IssuedCredential).where(IssuedCredential.uuid == credential_uuid))
