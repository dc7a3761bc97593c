"""The instructor's analytics page: learners at risk (a streak about to break near their local
midnight, or inactive for N days), the XP distribution (a server-side SVG histogram), badges
earned per badge, and the economy's health (coins minted against spent, from the ledger).

Read-only, from PostgreSQL. A token naming a course narrows every figure to that course's players
(course XP for the histogram); coins are tenant-wide, so the economy counts those players' coins.
Aggregates run in SQL; only the at-risk lists come back as rows, and they are capped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, render_template
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from questline.api import _int_arg, ctx
from questline.errors import Forbidden
from questline.models import Player, PlayerBadge, PlayerCourseStats, Tenant
from questline.rules_models import CurrencyLedger
from widgets.nudge_scan import StreakRisk, streaks_at_risk
from widgets.signing import EmbedGrant
from widgets.views import grant_from_request

bp = Blueprint("analytics", __name__, url_prefix="/analytics")
LIST_LIMIT = 50
BINS = 10


def population(grant: EmbedGrant) -> Select[tuple[int]] | None:
    """The course's players (those with course stats), or None for the whole tenant."""
    if not grant.course:
        return None
    return select(PlayerCourseStats.player_id).where(
        PlayerCourseStats.tenant_id == grant.tenant_id, PlayerCourseStats.course == grant.course
    )


@dataclass(frozen=True)
class Inactive:
    player_id: int
    name: str
    last_day: str | None  # the learner's local day of their last activity; None: never active
    days: int | None


def inactive(
    session: Session, tenant_id: int, *, days: int, now: datetime, among: Select[Any] | None
) -> tuple[int, list[Inactive]]:
    """(how many, the longest-inactive first up to LIST_LIMIT): no activity in the last ``days``
    local days. ``last_active_day`` is kept in the learner's zone by the streak engine, so the
    cut-off is taken in the tenant's zone (a learner a zone away is off by at most a day)."""
    zone = session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"
    cutoff = (now.astimezone(ZoneInfo(zone)).date() - timedelta(days=days)).isoformat()
    stale = (Player.last_active_day.is_(None)) | (Player.last_active_day <= cutoff)
    where = [Player.tenant_id == tenant_id, stale]
    if among is not None:
        where.append(Player.id.in_(among))
    total = int(session.scalar(select(func.count()).select_from(Player).where(*where)) or 0)
    rows = session.execute(
        select(Player.id, Player.display_name, Player.last_active_day)
        .where(*where)
        .order_by(Player.last_active_day.asc().nulls_first(), Player.id)
        .limit(LIST_LIMIT)
    ).all()
    today = now.astimezone(ZoneInfo(zone)).date()
    out = [
        Inactive(pid, name, last, (today - date.fromisoformat(last)).days if last else None)
        for pid, name, last in rows
    ]
    return total, out


@dataclass(frozen=True)
class Histogram:
    """XP in ``BINS`` equal bins from ``low``: (from, to, players) each; ``total`` players."""

    bins: list[tuple[int, int, int]]
    total: int

    @property
    def peak(self) -> int:
        return max((n for _, _, n in self.bins), default=0)


def _nice(span: float) -> int:
    """A bin width of 1, 2 or 5 times a power of ten, so the labels read well."""
    if span <= 1:
        return 1
    raw = span / BINS
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def xp_histogram(session: Session, grant: EmbedGrant) -> Histogram:
    """Players per XP bin, counted in SQL (a single GROUP BY, whatever the number of players)."""
    if grant.course:
        xp: Any = PlayerCourseStats.xp
        where = [PlayerCourseStats.tenant_id == grant.tenant_id]
        where.append(PlayerCourseStats.course == grant.course)
        source: Any = PlayerCourseStats
    else:
        xp, where, source = Player.xp, [Player.tenant_id == grant.tenant_id], Player
    low, high, total = session.execute(
        select(func.min(xp), func.max(xp), func.count()).select_from(source).where(*where)
    ).one()
    if not total:
        return Histogram([], 0)
    width = _nice(float(high - low))
    start = (int(low) // width) * width
    bucket = func.floor((xp - start) / float(width)).label("b")
    counts = {
        int(b): int(n)
        for b, n in session.execute(
            select(bucket, func.count()).select_from(source).where(*where).group_by(bucket)
        )
    }
    top = int(max(counts)) if counts else 0
    bins = [
        (start + i * width, start + (i + 1) * width - 1, counts.get(i, 0)) for i in range(top + 1)
    ]
    return Histogram(bins, int(total))


def badge_counts(
    session: Session, tenant_id: int, among: Select[Any] | None
) -> list[tuple[str, str, int]]:
    """(badge id, name, learners holding it) for awards in force, most earned first."""
    where = [PlayerBadge.tenant_id == tenant_id, PlayerBadge.revoked_at.is_(None)]
    if among is not None:
        where.append(PlayerBadge.player_id.in_(among))
    rows = session.execute(
        select(
            PlayerBadge.badge_id,
            func.max(PlayerBadge.name),
            func.count(func.distinct(PlayerBadge.player_id)),
        )
        .where(*where)
        .group_by(PlayerBadge.badge_id)
        .order_by(func.count(func.distinct(PlayerBadge.player_id)).desc(), PlayerBadge.badge_id)
    ).all()
    return [(b, n, int(c)) for b, n, c in rows]


@dataclass(frozen=True)
class Economy:
    minted: int
    spent: int
    minted_30d: int
    spent_30d: int
    by_kind: list[tuple[str, int, int]]  # (kind, minted, spent)

    @property
    def outstanding(self) -> int:
        return self.minted - self.spent

    @property
    def spend_ratio(self) -> int:
        """Percent of the coins minted that were spent (a healthy economy spends a good part)."""
        return round(100 * self.spent / self.minted) if self.minted else 0


def economy(
    session: Session, tenant_id: int, among: Select[Any] | None, *, now: datetime
) -> Economy:
    """Coins minted (credits) and spent (debits) from the append-only currency ledger."""
    where = [CurrencyLedger.tenant_id == tenant_id]
    if among is not None:
        where.append(CurrencyLedger.player_id.in_(among))
    credit = case((CurrencyLedger.amount > 0, CurrencyLedger.amount), else_=0)
    debit = case((CurrencyLedger.amount < 0, -CurrencyLedger.amount), else_=0)
    recent = CurrencyLedger.created_at >= now - timedelta(days=30)
    minted, spent, minted_30, spent_30 = session.execute(
        select(
            func.coalesce(func.sum(credit), 0),
            func.coalesce(func.sum(debit), 0),
            func.coalesce(func.sum(case((recent, credit), else_=0)), 0),
            func.coalesce(func.sum(case((recent, debit), else_=0)), 0),
        ).where(*where)
    ).one()
    kinds = session.execute(
        select(CurrencyLedger.kind, func.sum(credit), func.sum(debit))
        .where(*where)
        .group_by(CurrencyLedger.kind)
        .order_by(CurrencyLedger.kind)
    ).all()
    return Economy(
        int(minted),
        int(spent),
        int(minted_30),
        int(spent_30),
        [(k, int(m or 0), int(s or 0)) for k, m, s in kinds],
    )


def _option(name: str, default: int, low: int, high: int) -> int:
    value = _int_arg(name, default, low, high)  # 400 naming the parameter when out of range
    assert value is not None
    return value


@bp.get("")
def analytics_page() -> Response:
    grant, token = grant_from_request()
    if not grant.instructor:
        raise Forbidden("the analytics page needs an instructor token")
    hours = _option("hours", 6, 1, 24)
    days = _option("days", 7, 1, 365)
    now = datetime.now(UTC)
    among = population(grant)
    with ctx().db.sessions() as session:
        risks: list[StreakRisk] = streaks_at_risk(
            session, grant.tenant_id, now=now, hours=hours, among=among, limit=LIST_LIMIT
        )
        idle_total, idle = inactive(session, grant.tenant_id, days=days, now=now, among=among)
        histogram = xp_histogram(session, grant)
        badges = badge_counts(session, grant.tenant_id, among)
        coins = economy(session, grant.tenant_id, among, now=now)
    html = render_template(
        "widgets/instructor_analytics.html",
        grant=grant,
        token=token,
        hours=hours,
        days=days,
        risks=risks,
        idle=idle,
        idle_total=idle_total,
        histogram=histogram,
        badges=badges,
        coins=coins,
        limit=LIST_LIMIT,
    )
    return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})
