"""The learner dashboard's data and its charts, drawn on the server as SVG.

An activity calendar (XP per local day over recent weeks, as a heat map), the score history
(total XP per day over the last 30 days), the daily goal (XP today in the learner's zone against
the rule set's ``goals.daily_xp`` or the tenant default ``QUESTLINE_DAILY_GOAL_XP``), mastery per
module and XP per course. SVG made here needs no chart library, no script and no third party;
each chart carries a text summary for screen readers.

**Mastery per module.** A module is the course (LTI context) an event belongs to; events with no
course form one "other activities" module. Read from the events behind the learner's XP ledger
rows (``xp_ledger.inbox_event_id`` -> ``inbox_events.canonical``, the newest
``MASTERY_EVENTS``), per module: each object's *best* score (``result.score``, 0..1), and
whether it was completed (an event type ending in ``.completed``, or ``result.passed`` true).
A module with scored objects shows the mean of their best scores; one without shows its
completion share: completed objects out of the objects the learner worked on there. Events that
earned no XP are not in the ledger and so do not count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from questline.models import InboxEvent, Player, PlayerCourseStats, XpLedger
from widgets.data import _zone

CELL, GAP = 12, 3
HISTORY_DAYS = 30
MASTERY_EVENTS = 2000  # the newest events read for mastery (bounds the dashboard's cost)
MASTERY_MODULES = 8


@dataclass(frozen=True)
class Mastery:
    """One module's mastery: ``percent`` of ``basis`` ("score": mean best score of ``scored``
    objects; "completion": ``completed`` of ``objects``)."""

    module: str | None  # the course id; None: activities outside any course
    percent: int
    basis: str
    objects: int
    scored: int
    completed: int


@dataclass(frozen=True)
class DailyGoal:
    goal: int
    today: int

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.today / self.goal)) if self.goal > 0 else 100

    @property
    def met(self) -> bool:
        return self.today >= self.goal


@dataclass(frozen=True)
class Dashboard:
    weeks: int
    days: list[tuple[date, int]]  # every day of the calendar, oldest first, with its XP
    active_days: int
    history: list[tuple[date, int]]  # total XP at the end of each of the last 30 days
    courses: list[tuple[str, int]]  # XP per course, most first
    today: date
    goal: DailyGoal
    mastery: list[Mastery]


def learner_dashboard(
    session: Session,
    tenant_id: int,
    player: Player,
    *,
    now: datetime,
    daily_goal: int,
    weeks: int = 12,
) -> Dashboard:
    """Everything the dashboard shows; ``daily_goal`` is the XP per local day aimed for."""
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
        goal=DailyGoal(daily_goal, per_day.get(today, 0)),
        mastery=mastery(session, tenant_id, player.id),
    )


_OBJECT = InboxEvent.canonical[("object", "id")].as_string()
_MODULE = InboxEvent.canonical[("context", "course")].as_string()
_SCORE = InboxEvent.canonical[("result", "score")].as_float()
_PASSED = InboxEvent.canonical[("result", "passed")].as_boolean()
_RECENT_EVENTS = (
    select(XpLedger.inbox_event_id)
    .where(
        XpLedger.tenant_id == bindparam("tenant"),
        XpLedger.player_id == bindparam("player"),
        XpLedger.inbox_event_id.is_not(None),
    )
    .order_by(XpLedger.id.desc())
    .limit(MASTERY_EVENTS)
)
# One row per (module, object): the best score and whether it was completed, aggregated by the
# database from the JSON fields it needs (not thousands of whole events decoded in Python).
_MASTERY = (
    select(
        _MODULE,
        _OBJECT,
        func.max(_SCORE),
        func.max(
            case((InboxEvent.event_type.like("%.completed") | (_PASSED == True), 1), else_=0)  # noqa: E712
        ),
    )
    .where(
        InboxEvent.tenant_id == bindparam("tenant"),
        InboxEvent.id.in_(_RECENT_EVENTS),  # IN: an event with several ledger rows counts once
        _OBJECT.is_not(None),
    )
    .group_by(_MODULE, _OBJECT)
)


def mastery(session: Session, tenant_id: int, player_id: int) -> list[Mastery]:
    """Mastery per module (see the module docstring for how), best modules first."""
    # module -> object -> (best score or None, completed)
    modules: dict[str | None, dict[str, tuple[float | None, bool]]] = {}
    for module, obj, best, done in session.execute(
        _MASTERY, {"tenant": tenant_id, "player": player_id}
    ):
        modules.setdefault(module, {})[str(obj)] = (
            None if best is None else float(best),
            bool(done),
        )
    out = []
    for module, objects in modules.items():
        scores = [best for best, _ in objects.values() if best is not None]
        completed = sum(1 for _, done in objects.values() if done)
        if scores:
            percent, basis = round(100 * sum(scores) / len(scores)), "score"
        else:
            percent, basis = round(100 * completed / len(objects)), "completion"
        out.append(
            Mastery(module, max(0, min(100, percent)), basis, len(objects), len(scores), completed)
        )
    out.sort(key=lambda m: (-m.percent, m.module or "\uffff"))
    return out[:MASTERY_MODULES]


def goal_ring(goal: DailyGoal, radius: float = 34) -> tuple[float, float]:
    """(circumference, filled length) of the daily goal's ring, for stroke-dasharray."""
    circumference = 2 * math.pi * radius
    return round(circumference, 2), round(circumference * goal.percent / 100, 2)


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


def calendar_svg(cells: list[tuple[int, int, int, date, int]], xp_label: str) -> Markup:
    """The heat map's cells as SVG markup, built here rather than in a template loop: 84 cells
    with a title each made the calendar half of the dashboard's CPU. Dates and numbers need no
    escaping; ``xp_label`` (translated text) is escaped."""
    unit = escape(xp_label)
    return Markup(
        "".join(
            f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" rx="2" class="heat{level}">'
            f"<title>{day.isoformat()}: {xp} {unit}</title></rect>"
            for x, y, level, day, xp in cells
        )
    )


def history_points(board: Dashboard, width: int = 300, height: int = 80) -> str:
    """The score history as an SVG polyline's points, scaled into width x height."""
    values = [xp for _, xp in board.history]
    low, high = min(values, default=0), max(values, default=0)
    span = (high - low) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - (v - low) * height / span:.1f}" for i, v in enumerate(values)
    )
