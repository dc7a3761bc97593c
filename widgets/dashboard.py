"""The learner dashboard's data and its charts, drawn on the server as SVG.

An activity calendar (XP per local day over recent weeks, as a heat map), the score history
(total XP per day over the last 30 days) and XP per course ("mastery per module" until the rules
name modules). SVG made here needs no chart library, no script and no third party; each chart
carries a text summary for screen readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from questline.models import Player, PlayerCourseStats, XpLedger
from widgets.data import _zone

CELL, GAP = 12, 3
HISTORY_DAYS = 30


@dataclass(frozen=True)
class Dashboard:
    weeks: int
    days: list[tuple[date, int]]  # every day of the calendar, oldest first, with its XP
    active_days: int
    history: list[tuple[date, int]]  # total XP at the end of each of the last 30 days
    courses: list[tuple[str, int]]  # XP per course, most first
    today: date


def learner_dashboard(
    session: Session, tenant_id: int, player: Player, *, now: datetime, weeks: int = 12
) -> Dashboard:
    tz = ZoneInfo(_zone(session, tenant_id, player))
    today = now.astimezone(tz).date()
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    history_first = today - timedelta(days=HISTORY_DAYS - 1)
    since = datetime.combine(min(first, history_first), time(0), tzinfo=tz)
    per_day: dict[date, int] = {}
    for amount, at in session.execute(
        select(XpLedger.amount, XpLedger.occurred_at).where(
            XpLedger.tenant_id == tenant_id,
            XpLedger.player_id == player.id,
            XpLedger.occurred_at >= since,
        )
    ):
        day = at.astimezone(tz).date()
        per_day[day] = per_day.get(day, 0) + int(amount)
    days = [(first + timedelta(d), per_day.get(first + timedelta(d), 0)) for d in range(weeks * 7)]
    days = [(d, xp) for d, xp in days if d <= today]
    # Walk back from today's total to the total at the end of each earlier day.
    later = sum(xp for d, xp in per_day.items() if d > today)
    total = player.xp - later
    history: list[tuple[date, int]] = []
    for offset in range(HISTORY_DAYS):
        day = today - timedelta(offset)
        history.append((day, total))
        total -= per_day.get(day, 0)
    courses = [
        (course, int(xp))
        for course, xp in session.execute(
            select(PlayerCourseStats.course, PlayerCourseStats.xp)
            .where(
                PlayerCourseStats.tenant_id == tenant_id,
                PlayerCourseStats.player_id == player.id,
                PlayerCourseStats.xp > 0,
            )
            .order_by(PlayerCourseStats.xp.desc())
            .limit(8)
        )
    ]
    return Dashboard(
        weeks=weeks,
        days=days,
        active_days=sum(1 for _, xp in days if xp > 0),
        history=list(reversed(history)),
        courses=courses,
        today=today,
    )


def heat_level(xp: int, peak: int) -> int:
    """0 for no activity, else 1-4 by the share of the busiest day."""
    if xp <= 0 or peak <= 0:
        return 0
    return min(4, 1 + (4 * xp - 1) // peak)


def calendar_cells(board: Dashboard) -> list[tuple[int, int, int, date, int]]:
    """(x, y, heat level, day, xp) for each day: one column per week, Monday on top."""
    peak = max((xp for _, xp in board.days), default=0)
    first = board.days[0][0] if board.days else board.today
    return [
        (
            ((day - first).days // 7) * (CELL + GAP),
            day.weekday() * (CELL + GAP),
            heat_level(xp, peak),
            day,
            xp,
        )
        for day, xp in board.days
    ]


def history_points(board: Dashboard, width: int = 300, height: int = 80) -> str:
    """The score history as an SVG polyline's points, scaled into width x height."""
    values = [xp for _, xp in board.history]
    low, high = min(values, default=0), max(values, default=0)
    span = (high - low) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - (v - low) * height / span:.1f}" for i, v in enumerate(values)
    )
