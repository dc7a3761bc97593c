"""The retention policy, applied: what Questline stops keeping, and when.

Kept for the life of the tenant (they are the aggregates boards, leagues and replays are made
of): players (anonymised when erased), the XP and currency ledgers, badges, course XP, league
rows, identity audit rows (ids and rule names, no values), and each inbox event's canonical form
(what a retroactive rule replay reads).

Purged by ``questline privacy purge`` (and by ``questline scheduler`` once a day):

1. **Raw bodies** of inbox events (the bytes an LMS, CRM or the API sent, webhook deliveries
   included) once processed (applied or failed) and received more than
   ``QUESTLINE_RETENTION_DAYS`` days ago (default 365; 0 keeps them). Nothing reads a raw body
   after it was parsed; it is kept that long only to answer "what exactly did the sender send?".
   Pending rows keep theirs until processed.
2. **LTI launch records** a day after they expire (a launch lives 8 hours): they hold the whole
   id_token, name and email included, and serve only the pages that follow a launch.
3. **SSO sessions** a day after they ended or expired (they hold the provider's subject and
   session ids), and the back-channel logout token ids remembered to refuse replays.
4. **Erased players' leftovers**: anything attached to an erased player after the erasure (an
   event a worker was applying at that moment, an LTI membership from a roster sync in flight)
   is redacted or removed as the erasure would have, so erasure stays complete.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from identity import sso_sessions
from identity.models import IdentityAudit
from lti.models import LtiCourseMember, LtiLaunch, LtiScorePost
from questline.models import InboxEvent

LAUNCH_GRACE = timedelta(days=1)
SESSION_KEEP = timedelta(days=1)
CHUNK = 5000


@dataclass
class PurgeReport:
    raw_bodies_emptied: int = 0
    lti_launches_deleted: int = 0
    erased_leftovers: int = 0
    sso_sessions_deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def purge(session: Session, now: datetime, retention_days: int) -> PurgeReport:
    """Apply the policy across every tenant, in this transaction (chunked: a first run on a
    large inbox must not hold one huge update)."""
    report = PurgeReport()
    if retention_days > 0:
        cutoff = now - timedelta(days=retention_days)
        while True:
            ids = list(
                session.scalars(
                    select(InboxEvent.id)
                    .where(
                        InboxEvent.status != "pending",
                        InboxEvent.received_at < cutoff,
                        InboxEvent.raw != "",
                    )
                    .limit(CHUNK)
                )
            )
            if not ids:
                break
            done = session.execute(update(InboxEvent).where(InboxEvent.id.in_(ids)).values(raw=""))
            report.raw_bodies_emptied += _count(done)
    report.lti_launches_deleted = _count(
        session.execute(delete(LtiLaunch).where(LtiLaunch.expires_at < now - LAUNCH_GRACE))
    )
    report.erased_leftovers = _erased_leftovers(session)
    report.sso_sessions_deleted = sso_sessions.purge_ended(session, now, SESSION_KEEP)
    session.flush()
    return report


def _erased_leftovers(session: Session) -> int:
    erased = session.execute(
        select(IdentityAudit.tenant_id, IdentityAudit.player_id)
        .where(IdentityAudit.action == "erase", IdentityAudit.player_id.is_not(None))
        .distinct()
    ).all()
    fixed = 0
    for tenant_id, player_id in erased:
        pseudonym = f"erased:{player_id}"
        for row in session.scalars(
            select(InboxEvent).where(
                InboxEvent.tenant_id == tenant_id,
                InboxEvent.player_id == player_id,
                or_(
                    InboxEvent.raw != "",
                    InboxEvent.canonical["actor"]["id"].as_string() != pseudonym,
                    InboxEvent.canonical["actor"]["id"].as_string().is_(None),
                ),
            )
        ):
            canonical = dict(row.canonical or {})
            canonical["actor"] = {"id": pseudonym}
            row.canonical = canonical
            row.raw = ""
            fixed += 1
        for model in (LtiLaunch, LtiCourseMember, LtiScorePost):
            fixed += _count(
                session.execute(
                    delete(model).where(model.tenant_id == tenant_id, model.player_id == player_id)
                )
            )
    return fixed
