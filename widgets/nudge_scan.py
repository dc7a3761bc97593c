"""Nudges from the scheduler: find learners whose streak ends within a few hours of their local
midnight, who are one step from a badge, or who fell into their league's demotion zone, and
announce each on the outbound webhooks (``streak.at_risk``, ``badge.near``, ``league.at_risk``)
so a tenant can route them to email, Slack or Teams. The widgets show the banner themselves.

At most one nudge per learner per local day, durably: a ``nudges_sent`` row unique per (tenant,
player, day) is inserted with ON CONFLICT DO NOTHING, and only the rows actually inserted are
announced, in the same transaction (ARCHITECTURE 9: the outbox). A scheduler running twice, or
two schedulers at once, therefore send nothing twice. Learners who turned nudges off are skipped.

One nudge per day means a choice: the streak first (it has a deadline tonight), then the league
(the week ends soon), then a badge.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from engine.leagues import standings, time_left, week_window
from questline.db import Database
from questline.ingest import upsert_ignore
from questline.leaderboards import Leaderboards
from questline.league_models import LeagueMembership
from questline.league_repo import enabled_leagues, league_config, league_xp, tenant_zone
from questline.leagues import LeagueStore
from questline.models import Player, Tenant
from webhooks.outbound import Outbound, record_many
from widgets import data
from widgets.models import NudgeSent, WidgetPreference
from widgets.nudges import AT_RISK_HOURS, badge_near

log = logging.getLogger("questline.widgets")

# Badge progress is computed per learner (the badge shelf's own code), so it is looked for
# among learners active lately, and at most this many per tenant per run.
BADGE_ACTIVE_DAYS = 7
MAX_BADGE_SCAN = 2000


def _tz(zone: str | None, fallback: str) -> ZoneInfo:
    for name in (zone, fallback, "UTC"):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _near_days(now: datetime, before: int = 1, after: int = 1) -> list[str]:
    """Every local day some zone on Earth is in around ``now`` (UTC-12 to UTC+14), widened."""
    utc = now.astimezone(UTC).date()
    return [(utc + timedelta(days=d)).isoformat() for d in range(-before - 1, after + 1)]


@dataclass(frozen=True)
class StreakRisk:
    player_id: int
    name: str
    days: int
    hours_left: int
    zone: str
    day: str  # the learner's local today


def streaks_at_risk(
    session: Session,
    tenant_id: int,
    *,
    now: datetime,
    hours: int = AT_RISK_HOURS,
    among: Select[Any] | None = None,
    limit: int | None = None,
) -> list[StreakRisk]:
    """Learners with a streak whose last active day was their local yesterday (today does not
    count yet) and whose local midnight is less than ``hours`` away; soonest first. The same
    rule as the streak banner (``widgets.nudges.streak_at_risk``)."""
    fallback = session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"
    where = [
        Player.tenant_id == tenant_id,
        Player.streak_current > 0,
        Player.last_active_day.in_(_near_days(now, before=1, after=0)),
    ]
    if among is not None:
        where.append(Player.id.in_(among))
    found = []
    rows = session.execute(
        select(
            Player.id,
            Player.display_name,
            Player.streak_current,
            Player.last_active_day,
            Player.timezone,
        ).where(*where)
    )
    for pid, name, days, last, zone in rows:
        tz = _tz(zone, fallback)
        today = now.astimezone(tz).date()
        if last != (today - timedelta(days=1)).isoformat():
            continue
        left = datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz) - now
        if left < timedelta(hours=hours):
            hours_left = int(left.total_seconds() // 3600)
            found.append(StreakRisk(pid, name, days, hours_left, tz.key, today.isoformat()))
    found.sort(key=lambda r: (r.hours_left, -r.days, r.player_id))
    return found[:limit] if limit is not None else found


@dataclass(frozen=True)
class LeagueRisk:
    player_id: int
    scope: str
    week: str
    tier: str
    rank: int
    size: int
    xp: int
    hours_left: int


def leagues_at_risk(
    session: Session, boards: Leaderboards, tenant_id: int, *, now: datetime
) -> list[LeagueRisk]:
    """Members of this week's cohorts standing in the demotion zone. A cohort where nobody has
    any XP yet is skipped: the order there is only by id, nobody has fallen anywhere."""
    found: list[LeagueRisk] = []
    week = week_window(now, tenant_zone(session, tenant_id))
    hours = int(time_left(now, week).total_seconds() // 3600)
    for league in enabled_leagues(session, tenant_id):
        config = league_config(league)
        cohorts: dict[tuple[int, int], list[int]] = defaultdict(list)
        for cohort_id, tier, pid in session.execute(
            select(LeagueMembership.cohort_id, LeagueMembership.tier, LeagueMembership.player_id)
            .where(
                LeagueMembership.tenant_id == tenant_id,
                LeagueMembership.league_id == league.id,
                LeagueMembership.week == week.key,
            )
            .order_by(LeagueMembership.cohort_id)
        ):
            cohorts[(int(cohort_id), int(tier))].append(int(pid))
        for (cohort_id, tier), members in cohorts.items():
            try:
                live = LeagueStore(boards.client, boards.prefix).cohort_scores(tenant_id, cohort_id)
            except Exception:  # reads degrade to the ledger (STYLE 8)
                live = league_xp(session, league, week, members)
            scores = {pid: max(live.get(pid, 0), 0) for pid in members}
            if not any(scores.values()):
                continue
            for s in standings(scores, tier, config):
                if s.zone == "demotion":
                    found.append(
                        LeagueRisk(
                            s.player_id,
                            league.scope,
                            week.key,
                            config.tier_name(tier),
                            s.rank,
                            len(members),
                            s.xp,
                            hours,
                        )
                    )
    return found


def badges_near(
    session: Session, tenant_id: int, players: list[int], *, now: datetime
) -> dict[int, tuple[str, str]]:
    """player -> (badge id, name) of a badge one step away (the badge shelf's own progress)."""
    out: dict[int, tuple[str, str]] = {}
    for player in session.scalars(
        select(Player).where(Player.tenant_id == tenant_id, Player.id.in_(players))
    ):
        _, locked = data.badge_shelf(session, tenant_id, player, now=now)
        for badge in locked:
            if badge_near([badge]) is not None:
                out[player.id] = (badge.badge_id, badge.name)
                break
    return out


@dataclass
class NudgeStats:
    """What one run did: nudges sent per kind, outbox rows written, learners skipped."""

    sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    outbox_rows: int = 0
    opted_out: int = 0
    already: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "outbox_rows": self.outbox_rows,
            "opted_out": self.opted_out,
            "already_nudged_today": self.already,
        }


def nudge_tenant(
    session: Session,
    boards: Leaderboards,
    tenant_id: int,
    *,
    now: datetime,
    hours: int = AT_RISK_HOURS,
    stats: NudgeStats | None = None,
) -> NudgeStats:
    """Find and send one tenant's nudges in the caller's transaction; returns the counts."""
    stats = stats or NudgeStats()
    fallback = session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"
    off = set(
        session.scalars(
            select(WidgetPreference.player_id).where(
                WidgetPreference.tenant_id == tenant_id, WidgetPreference.nudges_off.is_(True)
            )
        )
    )
    done = set(
        session.execute(
            select(NudgeSent.player_id, NudgeSent.day).where(
                NudgeSent.tenant_id == tenant_id, NudgeSent.day.in_(_near_days(now))
            )
        ).all()
    )
    zones = {}  # player -> local today, for the learners we consider
    chosen: dict[int, tuple[str, dict[str, Any]]] = {}

    def today_of(pid: int, zone: str | None) -> str:
        if pid not in zones:
            zones[pid] = now.astimezone(_tz(zone, fallback)).date().isoformat()
        return zones[pid]

    def consider(pid: int, zone: str | None, kind: str, payload: dict[str, Any]) -> None:
        if pid in chosen:
            return
        if pid in off:
            stats.opted_out += 1
            return
        day = today_of(pid, zone)
        if (pid, day) in done:
            stats.already += 1
            return
        chosen[pid] = (kind, {"player_id": pid, "day": day, **payload})

    for risk in streaks_at_risk(session, tenant_id, now=now, hours=hours):
        zones[risk.player_id] = risk.day
        consider(
            risk.player_id,
            risk.zone,
            "streak.at_risk",
            {"name": risk.name, "days": risk.days, "hours_left": risk.hours_left},
        )
    league_risks = leagues_at_risk(session, boards, tenant_id, now=now)
    player_zones = _zones_of(session, tenant_id, [r.player_id for r in league_risks])
    for lr in league_risks:
        consider(
            lr.player_id,
            player_zones.get(lr.player_id),
            "league.at_risk",
            {
                "league": lr.scope, "week": lr.week, "tier": lr.tier, "rank": lr.rank,
                "cohort_size": lr.size, "xp": lr.xp, "hours_left": lr.hours_left,
            },
        )  # fmt: skip
    recent = (now.astimezone(UTC).date() - timedelta(days=BADGE_ACTIVE_DAYS + 1)).isoformat()
    candidates = [
        (pid, zone)
        for pid, zone in session.execute(
            select(Player.id, Player.timezone)
            .where(Player.tenant_id == tenant_id, Player.last_active_day >= recent)
            .order_by(Player.id)
        )
        if pid not in chosen and pid not in off
    ]
    candidates = [(p, z) for p, z in candidates if (p, today_of(p, z)) not in done]
    candidates = candidates[:MAX_BADGE_SCAN]
    near = badges_near(session, tenant_id, [p for p, _ in candidates], now=now)
    for pid, zone in candidates:
        if pid in near:
            badge_id, name = near[pid]
            consider(pid, zone, "badge.near", {"badge_id": badge_id, "badge": name})
    _send(session, tenant_id, chosen, stats, now=now)
    return stats


def _zones_of(session: Session, tenant_id: int, ids: list[int]) -> dict[int, str | None]:
    if not ids:
        return {}
    rows = session.execute(
        select(Player.id, Player.timezone).where(Player.tenant_id == tenant_id, Player.id.in_(ids))
    )
    return {pid: zone for pid, zone in rows}


def _send(
    session: Session,
    tenant_id: int,
    chosen: dict[int, tuple[str, dict[str, Any]]],
    stats: NudgeStats,
    *,
    now: datetime,
) -> None:
    """Insert the day's rows (skipping any another run inserted meanwhile) and write the outbox
    rows for exactly the ones inserted here."""
    if not chosen:
        return
    rows = [
        {
            "tenant_id": tenant_id,
            "player_id": pid,
            "day": payload["day"],
            "kind": kind,
            "detail": payload,
            "created_at": now,
        }
        for pid, (kind, payload) in sorted(chosen.items())
    ]
    stmt = upsert_ignore(session, NudgeSent).returning(NudgeSent.player_id, NudgeSent.day)
    inserted = set(session.execute(stmt, rows).all())
    stats.already += len(rows) - len(inserted)
    messages = []
    for pid, (kind, payload) in sorted(chosen.items()):
        if (pid, payload["day"]) in inserted:
            stats.sent[kind] += 1
            messages.append(Outbound(kind, payload, f"nudge:{pid}:{payload['day']}"))
    stats.outbox_rows += record_many(session, tenant_id, messages, now=now)


def run_nudges(
    db: Database, boards: Leaderboards, *, now: datetime | None = None, hours: int = AT_RISK_HOURS
) -> NudgeStats:
    """The scheduler's duty: every tenant, one transaction each (a failing tenant is logged and
    the others still get their nudges)."""
    now = now or datetime.now(UTC)
    stats = NudgeStats()
    with db.sessions() as session:
        tenants = list(session.scalars(select(Tenant.id).order_by(Tenant.id)))
    for tenant_id in tenants:
        try:
            with db.session() as session:
                nudge_tenant(session, boards, tenant_id, now=now, hours=hours, stats=stats)
        except Exception:
            log.error("nudges failed for a tenant", exc_info=True, extra={"tenant_id": tenant_id})
    return stats


def today_nudge(session: Session, tenant_id: int, player: Player, *, now: datetime) -> str | None:
    """The kind of the nudge this learner got today (their local day), if any."""
    fallback = session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"
    day = now.astimezone(_tz(player.timezone, fallback)).date().isoformat()
    return session.scalar(
        select(NudgeSent.kind).where(
            NudgeSent.tenant_id == tenant_id,
            NudgeSent.player_id == player.id,
            NudgeSent.day == day,
        )
    )
