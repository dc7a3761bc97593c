"""Properties of the engine over generated event streams.

The worker's model (workers/process.py): each delivery is evaluated against the player's state;
awards are appended to a ledger keyed by idempotency key (first write wins, repeats are ignored);
the player's XP is the sum of the ledger and the level never goes down. These tests run that
model over arbitrary streams, with re-deliveries and shuffles, and check what must hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.decisions import Decision, LevelReached, StreakUpdated, XpAwarded
from engine.evaluate import PlayerState, evaluate
from engine.events import ActivityEvent, parse_event
from engine.rules import DEFAULT_RULES, parse_rules

RULES = parse_rules(DEFAULT_RULES)
RULE_TYPES = sorted({rule["on"] for rule in DEFAULT_RULES["xp"]})
ZONES = [
    "UTC",
    "Pacific/Auckland",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Europe/Paris",
]
SETTINGS = settings(max_examples=60, deadline=None)

scores = st.one_of(
    st.none(),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    st.sampled_from([0.0, 0.025, 0.5, 0.975, 1.0]),  # rounding edges for 20 and 30 points
)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2028, 12, 31),
    timezones=st.sampled_from([UTC, *(ZoneInfo(z) for z in ZONES)]),
)


@st.composite
def event_dicts(draw: st.DrawFn, source: str, event_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": event_id,
        "source": source,
        # Mostly rule-bearing types, sometimes one no rule mentions.
        "type": draw(st.sampled_from([*RULE_TYPES, "page.viewed"])),
        "actor": {"id": "learner-1"},
        "occurred_at": draw(moments).isoformat(),
    }
    score = draw(scores)
    if score is not None:
        data["result"] = {"score": score}
    if draw(st.booleans()):
        data["context"] = {"course": draw(st.sampled_from(["c1", "c2"]))}
    return data


@st.composite
def unique_events(draw: st.DrawFn, max_size: int = 12) -> list[ActivityEvent]:
    """Distinct events: each (source, id) appears once with one content.

    Ids come from a tiny alphabet, so one id often appears under several sources: those are
    different events (ids are unique per source) and must not be confused.
    """
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["api", "moodle", "lti"]),
                st.text(alphabet="ab1-", min_size=1, max_size=3),
            ),
            min_size=1,
            max_size=max_size,
            unique=True,
        )
    )
    return [parse_event(draw(event_dicts(source, event_id))) for source, event_id in keys]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[ActivityEvent], list[ActivityEvent]]:
    """(the distinct events, a delivery stream: shuffled, with some delivered again)."""
    events = draw(unique_events())
    repeats = draw(st.lists(st.sampled_from(events), max_size=len(events) * 2))
    stream = draw(st.permutations(events + repeats))
    return events, stream


@dataclass
class Run:
    decisions: list[list[Decision]]
    states: list[PlayerState]
    ledger: dict[str, tuple[str, int, str | None]]


def apply(stream: list[ActivityEvent], zone: str) -> Run:
    """The worker's model: evaluate each delivery, keep each ledger key once."""
    state = PlayerState()
    ledger: dict[str, tuple[str, int, str | None]] = {}
    run = Run([], [], ledger)
    for event in stream:
        decisions, after = evaluate(event, state, RULES, zone)
        for d in decisions:
            if isinstance(d, XpAwarded) and d.idempotency_key not in ledger:
                ledger[d.idempotency_key] = (d.rule_id, d.amount, d.course)
        xp = sum(amount for _, amount, _ in ledger.values())
        state = replace(after, xp=xp, level=max(state.level, RULES.levels.level_for(xp)))
        run.decisions.append(decisions)
        run.states.append(state)
    return run


def expected_total(events: list[ActivityEvent]) -> int:
    """The XP the distinct events are worth, straight from the rules."""
    return sum(
        rule.points_for(event.result.score)
        for event in events
        for rule in RULES.rules_for(event.type)
    )


@SETTINGS
@given(deliveries(), st.sampled_from(ZONES))
def test_evaluation_is_deterministic(data: tuple[list[Any], list[Any]], zone: str) -> None:
    _, stream = data
    first, second = apply(stream, zone), apply(stream, zone)
    assert first.decisions == second.decisions
    assert first.states == second.states
    # Re-parsing from the stored JSON form gives the same decisions too.
    reparsed = apply([parse_event(e.to_dict()) for e in stream], zone)
    assert reparsed.decisions == first.decisions


@SETTINGS
@given(deliveries(), st.sampled_from(ZONES))
def test_ledger_is_independent_of_order_and_redelivery(
    data: tuple[list[Any], list[Any]], zone: str
) -> None:
    events, stream = data
    once_in_order = apply(events, zone).ledger
    shuffled_with_repeats = apply(stream, zone).ledger
    assert shuffled_with_repeats == once_in_order
    # And the same across zones: the ledger does not depend on the player's calendar.
    assert apply(stream, "UTC").ledger == once_in_order


@SETTINGS
@given(deliveries(), st.sampled_from(ZONES))
def test_total_xp_is_the_sum_of_deduplicated_awards(
    data: tuple[list[Any], list[Any]], zone: str
) -> None:
    events, stream = data
    run = apply(stream, zone)
    total = sum(amount for _, amount, _ in run.ledger.values())
    assert run.states[-1].xp == total == expected_total(events)
    # Every award in the ledger is positive: zero-point awards never reach it.
    assert all(amount > 0 for _, amount, _ in run.ledger.values())


@SETTINGS
@given(unique_events(), st.sampled_from(ZONES))
def test_without_repeats_evaluate_state_sums_its_own_awards(
    events: list[ActivityEvent], zone: str
) -> None:
    state = PlayerState()
    awarded = 0
    for event in events:
        decisions, state = evaluate(event, state, RULES, zone)
        awarded += sum(d.amount for d in decisions if isinstance(d, XpAwarded))
    assert state.xp == awarded == expected_total(events)
    assert state.level == RULES.levels.level_for(awarded)


@SETTINGS
@given(deliveries(), st.sampled_from(ZONES))
def test_level_is_monotone_along_any_stream(data: tuple[list[Any], list[Any]], zone: str) -> None:
    _, stream = data
    run = apply(stream, zone)
    previous = PlayerState()
    for decisions, state in zip(run.decisions, run.states, strict=True):
        assert state.level >= previous.level
        assert state.level == max(previous.level, RULES.levels.level_for(state.xp))
        reached = [d for d in decisions if isinstance(d, LevelReached)]
        assert len(reached) <= 1
        for d in reached:
            assert d.level > d.previous == previous.level
        if state.level > previous.level:
            assert reached == [LevelReached(state.level, previous.level)]
        previous = state


@SETTINGS
@given(
    unique_events(),
    st.sampled_from(ZONES),
    st.integers(min_value=0, max_value=3000),
    st.integers(min_value=1, max_value=15),
)
def test_level_reached_exactly_when_the_level_rises(
    events: list[ActivityEvent], zone: str, xp: int, level: int
) -> None:
    # Without re-deliveries, evaluate's own state is the whole truth: a LevelReached is emitted
    # exactly for the events that raise the level, naming the new level. The starting level may
    # be above what the XP gives (a player levelled under an easier, older curve): it never drops.
    state = PlayerState(xp=xp, level=level)
    for event in events:
        decisions, after = evaluate(event, state, RULES, zone)
        reached = [d for d in decisions if isinstance(d, LevelReached)]
        assert after.level == max(state.level, RULES.levels.level_for(after.xp))
        if after.level > state.level:
            assert reached == [LevelReached(after.level, state.level)]
        else:
            assert reached == []
        state = after


@SETTINGS
@given(deliveries(), st.sampled_from(ZONES))
def test_streak_invariants(data: tuple[list[Any], list[Any]], zone: str) -> None:
    _, stream = data
    run = apply(stream, zone)
    last_day = None
    for decisions, state in zip(run.decisions, run.states, strict=True):
        streak = state.streak
        assert streak.longest >= streak.current >= 1
        assert streak.last_day is not None
        # The streak's day only moves forward: late deliveries never rewind it.
        assert last_day is None or streak.last_day >= last_day
        updates = [d for d in decisions if isinstance(d, StreakUpdated)]
        if streak.last_day != last_day:
            assert updates == [StreakUpdated(streak.current, streak.longest, streak.last_day)]
        else:
            assert updates == []
        last_day = streak.last_day


def calendar_streak(moments: list[datetime], zone: str) -> tuple[int, int, date]:
    """(current, longest, last day) computed straight from the set of local days."""
    days = sorted({m.astimezone(ZoneInfo(zone)).date() for m in moments})
    runs = [1]
    for before, after in pairwise(days):
        runs.append(runs[-1] + 1 if after - before == timedelta(days=1) else 1)
    return runs[-1], max(runs), days[-1]


@SETTINGS
@given(unique_events(), st.sampled_from(ZONES))
def test_in_order_streak_matches_the_calendar(events: list[ActivityEvent], zone: str) -> None:
    # Delivered in time order, the streak is exactly the run of consecutive local days.
    ordered = sorted(events, key=lambda e: e.occurred_at)
    state = apply(ordered, zone).states[-1]
    current, longest, last_day = calendar_streak([e.occurred_at for e in events], zone)
    assert (state.streak.current, state.streak.longest, state.streak.last_day) == (
        current,
        longest,
        last_day,
    )
