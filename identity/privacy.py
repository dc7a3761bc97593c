"""Privacy: export everything we hold about a player, and erase the personal part of it.

Erasure keeps the anonymised aggregates (XP, level, ledger amounts, badges, course XP) so boards
and league standings stay consistent, and removes what identifies the person: name, email,
time zone, every identity (actor ids, emails, SSO subjects, employee ids), roles, and the raw
bodies and actor details of their inbox events. The player keeps one synthetic identity
``("actor", "erased:<id>")`` and their inbox events are rewritten to that actor, so a
retroactive replay still scores the same anonymous player. Events that arrive later under the
person's old ids create a new player: the source system still knows them, Questline does not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from identity.linking import audit, identities_json
from identity.models import IdentityAudit, PlayerMerge, PlayerRole, SsoSession
from lti.models import LtiCourseMember, LtiLaunch, LtiScorePost
from questline.errors import NotFound
from questline.models import (
    InboxEvent,
    Player,
    PlayerBadge,
    PlayerCourseStats,
    PlayerIdentity,
    PlayerInventory,
    XpLedger,
)

ERASED_NAME = "Erased player"


def _player(session: Session, tenant_id: int, player_id: int, *, lock: bool = False) -> Player:
    query = select(Player).where(Player.tenant_id == tenant_id, Player.id == player_id)
    player = session.scalar(query.with_for_update() if lock else query)
    if player is None:
        raise NotFound(f"no player {player_id} in this tenant")
    return player


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_player(session: Session, tenant_id: int, player_id: int) -> dict[str, Any]:
    """Everything stored about one player, as JSON-safe data (a subject access request)."""
    p = _player(session, tenant_id, player_id)
    where = {"tenant_id": tenant_id, "player_id": player_id}
    return {
        "exported_at": datetime.now(UTC).isoformat(),
        "player": {
            "id": p.id,
            "display_name": p.display_name,
            "email": p.email,
            "timezone": p.timezone,
            "xp": p.xp,
            "level": p.level,
            "streak_current": p.streak_current,
            "streak_longest": p.streak_longest,
            "last_active_day": p.last_active_day,
            "created_at": _iso(p.created_at),
        },
        "identities": identities_json(session, tenant_id, player_id),
        "roles": [
            {"role": r.role, "scope": r.scope}
            for r in session.scalars(select(PlayerRole).filter_by(**where))
        ],
        "ledger": [
            {
                "rule": x.rule_id,
                "amount": x.amount,
                "course": x.course,
                "explanation": x.explanation,
                "occurred_at": _iso(x.occurred_at),
            }
            for x in session.scalars(select(XpLedger).filter_by(**where).order_by(XpLedger.id))
        ],
        "badges": [
            {
                "badge": b.badge_id,
                "name": b.name,
                "tier": b.tier_name,
                "awarded_at": _iso(b.awarded_at),
            }
            for b in session.scalars(
                select(PlayerBadge).filter_by(**where).order_by(PlayerBadge.id)
            )
        ],
        "course_xp": {
            c.course: c.xp for c in session.scalars(select(PlayerCourseStats).filter_by(**where))
        },
        "inventory": {
            i.item: i.quantity for i in session.scalars(select(PlayerInventory).filter_by(**where))
        },
        "events": [
            {
                "id": e.id,
                "source": e.source,
                "type": e.event_type,
                "occurred_at": _iso(e.occurred_at),
                "canonical": e.canonical,
            }
            for e in session.scalars(select(InboxEvent).filter_by(**where).order_by(InboxEvent.id))
        ],
        "audit": [
            {"action": a.action, "actor": a.actor, "at": _iso(a.created_at), "detail": a.detail}
            for a in session.scalars(
                select(IdentityAudit).filter_by(**where).order_by(IdentityAudit.id)
            )
        ],
    }


def merged_into(session: Session, tenant_id: int, player_id: int) -> list[int]:
    """Every player merged (directly or through others) into this one: the empty shells a merge
    leaves behind still carry the person's old display name."""
    found: list[int] = []
    frontier = [player_id]
    while frontier:
        sources = list(
            session.scalars(
                select(PlayerMerge.source_player_id).where(
                    PlayerMerge.tenant_id == tenant_id,
                    PlayerMerge.target_player_id.in_(frontier),
                )
            )
        )
        frontier = [s for s in sources if s not in found and s != player_id]
        found += frontier
    return found


def _redact(row: InboxEvent, pseudonym: str) -> None:
    canonical = dict(row.canonical or {})
    canonical["actor"] = {"id": pseudonym}
    row.canonical = canonical
    row.raw = ""


def erase_player(session: Session, tenant_id: int, player_id: int, actor: str) -> dict[str, int]:
    """Erase the player's personal data in this transaction; returns counts of what changed.

    Besides the player row, identities and roles, this clears: the shells of players merged
    into this one; the inbox rows of the person, including rows not yet assigned to a player
    (a webhook delivery still pending or failed, found by the person's actor ids and emails);
    and the LTI tool's copies (launch records holding the id_token claims, course memberships
    holding the LMS user id and roles from launches and NRPS roster syncs, AGS score posts).
    """
    _player(session, tenant_id, player_id, lock=True)  # 404 first; serialises with merges
    people = [player_id, *merged_into(session, tenant_id, player_id)]
    held = session.execute(
        select(PlayerIdentity.kind, PlayerIdentity.value).where(
            PlayerIdentity.tenant_id == tenant_id, PlayerIdentity.player_id.in_(people)
        )
    ).all()
    actor_ids = sorted({value for kind, value in held if kind == "actor"})
    emails = {value.lower() for kind, value in held if kind == "email"}
    for shell in session.scalars(
        select(Player).where(Player.tenant_id == tenant_id, Player.id.in_(people))
    ):
        if shell.email:
            emails.add(shell.email.lower())
        shell.display_name = f"{ERASED_NAME} {shell.id}"
        shell.email = None
        shell.timezone = None
    removed = session.execute(
        delete(PlayerIdentity).where(
            PlayerIdentity.tenant_id == tenant_id, PlayerIdentity.player_id.in_(people)
        )
    )
    session.execute(
        delete(PlayerRole).where(
            PlayerRole.tenant_id == tenant_id, PlayerRole.player_id.in_(people)
        )
    )
    pseudonym = f"erased:{player_id}"
    session.add(
        PlayerIdentity(tenant_id=tenant_id, player_id=player_id, kind="actor", value=pseudonym)
    )
    events = 0
    for row in session.scalars(
        select(InboxEvent).where(
            InboxEvent.tenant_id == tenant_id, InboxEvent.player_id.in_(people)
        )
    ):
        _redact(row, pseudonym)
        events += 1
    unassigned = 0
    if actor_ids or emails:
        actor_of = InboxEvent.canonical["actor"]
        for row in session.scalars(
            select(InboxEvent).where(
                InboxEvent.tenant_id == tenant_id,
                InboxEvent.player_id.is_(None),
                or_(
                    actor_of["id"].as_string().in_(actor_ids),
                    func.lower(actor_of["email"].as_string()).in_(sorted(emails)),
                ),
            )
        ):
            _redact(row, pseudonym)  # applied later, it scores the same anonymous player
            unassigned += 1
    # Their SSO sessions end (the rows hold the provider's subject and session ids).
    session.execute(
        delete(SsoSession).where(
            SsoSession.tenant_id == tenant_id, SsoSession.player_id.in_(people)
        )
    )
    lti_rows = 0
    for model in (LtiLaunch, LtiCourseMember, LtiScorePost):
        done = session.execute(
            delete(model).where(model.tenant_id == tenant_id, model.player_id.in_(people))
        )
        lti_rows += int(getattr(done, "rowcount", 0) or 0)
    for entry in session.scalars(
        select(IdentityAudit).where(
            IdentityAudit.tenant_id == tenant_id, IdentityAudit.player_id.in_(people)
        )
    ):
        entry.actor = entry.actor if not entry.actor.startswith("player:") else "player"
    result = {
        "identities_removed": int(getattr(removed, "rowcount", 0) or 0),
        "events_redacted": events,
        "unassigned_events_redacted": unassigned,
        "lti_rows_removed": lti_rows,
        "merged_shells_erased": len(people) - 1,
    }
    audit(session, tenant_id, "erase", actor, player_id, **result)
    session.flush()
    return result
