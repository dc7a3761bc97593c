"""engine.leagues: week windows across zones and DST, placement, zones, promotion/demotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.leagues import (
    DEFAULT_TIERS,
    LeagueConfig,
    LeagueConfigError,
    OpenCohort,
    close_cohort,
    place,
    previous_week,
    rank,
    standings,
    time_left,
    week_window,
    window,
    zone_for,
)

KOLKATA, LA = "Asia/Kolkata", "America/Los_Angeles"
ZONES = [KOLKATA, LA, "UTC", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham"]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- week windows -----------------------------------------------------------------------------


def test_kolkata_week_turns_at_local_midnight_monday() -> None:
    before = week_window(utc("2026-11-22T18:29:59"), KOLKATA)  # Sunday 23:59:59 IST
    after = week_window(utc("2026-11-22T18:30:00"), KOLKATA)  # Monday 00:00 IST
    assert before.key == "2026-11-16"
    assert after.key == "2026-11-23"
    assert before.end == after.start == utc("2026-11-22T18:30:00")
    assert after.end - after.start == timedelta(days=7)


def test_los_angeles_week_turns_at_local_midnight_monday() -> None:
    assert week_window(utc("2026-11-23T07:59:59"), LA).key == "2026-11-16"  # Sun 23:59 PST
    monday = week_window(utc("2026-11-23T08:00:00"), LA)
    assert monday.key == "2026-11-23"
    assert monday.start == utc("2026-11-23T08:00:00")


def test_same_instant_is_in_different_weeks_by_zone() -> None:
    moment = utc("2026-11-22T20:00:00")  # Monday 01:30 in Kolkata, Sunday noon in LA
    assert week_window(moment, KOLKATA).key == "2026-11-23"
    assert week_window(moment, LA).key == "2026-11-16"


def test_dst_end_week_in_los_angeles_is_169_hours() -> None:
    # Clocks go back on Sunday 2026-11-01 at 02:00 PDT.
    week = week_window(utc("2026-10-29T12:00:00"), LA)
    assert week.key == "2026-10-26"
    assert week.start == utc("2026-10-26T07:00:00")  # midnight PDT
    assert week.end == utc("2026-11-02T08:00:00")  # midnight PST
    assert week.end - week.start == timedelta(hours=169)
    # The extra hour belongs to the old week: 01:30 PST on Sunday is still week 10-26.
    assert week.contains(utc("2026-11-01T09:30:00"))


def test_dst_start_week_in_los_angeles_is_167_hours() -> None:
    # Clocks go forward on Sunday 2026-03-08 at 02:00 PST.
    week = week_window(utc("2026-03-04T12:00:00"), LA)
    assert week.key == "2026-03-02"
    assert week.end - week.start == timedelta(hours=167)
    assert week_window(week.end, LA).start == week.end


def test_day_and_month_windows() -> None:
    day = window("day", utc("2026-11-01T12:00:00"), LA)  # the 25-hour day
    assert day.key == "2026-11-01"
    assert day.end - day.start == timedelta(hours=25)
    month = window("month", utc("2026-11-30T19:00:00"), KOLKATA)  # Dec 1 00:30 IST
    assert month.key == "2026-12-01"
    assert month.end == utc("2026-12-31T18:30:00")
    february = window("month", utc("2028-02-15T00:00:00"), "UTC")
    assert february.end - february.start == timedelta(days=29)


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError):
        week_window(datetime(2026, 11, 20), "UTC")


def test_time_left_and_previous_week() -> None:
    week = week_window(utc("2026-11-20T00:00:00"), "UTC")
    assert time_left(utc("2026-11-22T23:00:00"), week) == timedelta(hours=1)
    assert time_left(utc("2026-11-25T00:00:00"), week) == timedelta(0)
    assert previous_week(week, "UTC").key == "2026-11-09"


moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(moment=moments, zone=st.sampled_from(ZONES))
def test_week_window_properties(moment: datetime, zone: str) -> None:
    week = week_window(moment, zone)
    assert week.contains(moment)
    local_start = week.start.astimezone(ZoneInfo(zone))
    assert local_start.weekday() == 0
    assert (local_start.hour, local_start.minute) == (0, 0)
    assert local_start.date().isoformat() == week.key
    # Weeks tile time: the next week starts where this one ends, and so does the previous.
    assert week_window(week.end, zone).start == week.end
    assert previous_week(week, zone).end == week.start
    assert timedelta(hours=166) <= week.end - week.start <= timedelta(hours=170)


@given(moment=moments, zone=st.sampled_from(ZONES), kind=st.sampled_from(["day", "month"]))
def test_day_and_month_windows_tile(moment: datetime, zone: str, kind: str) -> None:
    win = window(kind, moment, zone)  # type: ignore[arg-type]
    assert win.contains(moment)
    assert window(kind, win.end, zone).start == win.end  # type: ignore[arg-type]


# --- configuration ------------------------------------------------------------------------------


def test_default_config_has_ten_tiers_of_thirty() -> None:
    config = LeagueConfig.build()
    assert config.tiers == DEFAULT_TIERS and len(config.tiers) == 10
    assert config.tiers[0] == "Bronze" and config.tiers[-1] == "Diamond"
    assert config.cohort_size == 30
    assert config.promote_count(9) == 0  # Diamond has nowhere to go
    assert config.demote_count(0) == 0  # nor has Bronze
    assert config.promote_count(0) == 7 and config.demote_count(9) == 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tiers": []},
        {"tiers": ["A", "A"]},
        {"tiers": ["A", " "]},
        {"cohort_size": 1},
        {"promote": -1},
        {"promote": [1, 2]},
        {"promote": 20, "demote": 20},
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(LeagueConfigError):
        LeagueConfig.build(**kwargs)  # type: ignore[arg-type]


def test_per_tier_counts() -> None:
    config = LeagueConfig.build(["A", "B", "C"], 10, promote=[3, 2, 9], demote=[9, 1, 4])
    assert [config.promote_count(t) for t in range(3)] == [3, 2, 0]
    assert [config.demote_count(t) for t in range(3)] == [0, 1, 4]


# --- placement ----------------------------------------------------------------------------------


def test_place_fills_the_open_cohort_before_opening_a_new_one() -> None:
    plan = place([OpenCohort(7, 28), OpenCohort(8, 30)], 5, 30)
    assert plan.existing == ((7, 2),)
    assert plan.new == (3,)


def test_place_fills_fullest_first_and_opens_full_cohorts() -> None:
    plan = place([OpenCohort(1, 3), OpenCohort(2, 20)], 70, 30)
    assert plan.existing == ((2, 10), (1, 27))
    assert plan.new == (30, 3)
    assert place([], 0, 30).new == ()


@given(
    sizes=st.lists(st.integers(0, 30), max_size=6),
    joiners=st.integers(0, 200),
    size=st.integers(2, 30),
)
def test_place_properties(sizes: list[int], joiners: int, size: int) -> None:
    cohorts = [OpenCohort(i, min(s, size)) for i, s in enumerate(sizes)]
    plan = place(cohorts, joiners, size)
    assert sum(n for _, n in plan.existing) + sum(plan.new) == joiners
    by_id = {c.cohort_id: c.size for c in cohorts}
    after = [by_id[c] + n for c, n in plan.existing] + list(plan.new)
    assert all(0 < n <= size for n in after)
    # A new cohort opens only when every existing one is full.
    if plan.new:
        filled = dict(plan.existing)
        assert all(c.size + filled.get(c.cohort_id, 0) == size for c in cohorts)
    # Among the new cohorts only the last may be short.
    assert all(n == size for n in plan.new[:-1])


# --- zones, standings, close ---------------------------------------------------------------------


def test_zone_counts_in_a_full_cohort() -> None:
    zones = [zone_for(p, 30, 7, 5) for p in range(1, 31)]
    assert zones.count("promotion") == 7
    assert zones.count("demotion") == 5
    assert zones[:7] == ["promotion"] * 7 and zones[-5:] == ["demotion"] * 5


def test_small_cohort_never_promotes_and_demotes_one_player() -> None:
    assert [zone_for(p, 3, 7, 5) for p in (1, 2, 3)] == ["promotion"] * 3
    assert [zone_for(p, 8, 7, 5) for p in range(1, 9)].count("demotion") == 1


def test_rank_orders_by_xp_then_player_id() -> None:
    assert rank({5: 10, 3: 10, 9: 50}) == [(1, 9, 50), (2, 3, 10), (3, 5, 10)]


def test_standings_at_the_tier_ends() -> None:
    config = LeagueConfig.build()
    scores = {pid: 100 - pid for pid in range(1, 31)}
    top = standings(scores, 9, config)
    assert not [s for s in top if s.zone == "promotion"]
    assert len([s for s in top if s.zone == "demotion"]) == 5
    bottom = standings(scores, 0, config)
    assert not [s for s in bottom if s.zone == "demotion"]
    assert [s.player_id for s in bottom if s.zone == "promotion"] == list(range(1, 8))


def test_close_cohort_moves_players_and_inactive_leave() -> None:
    config = LeagueConfig.build(["A", "B", "C"], 10, promote=2, demote=2)
    scores = {1: 50, 2: 40, 3: 30, 4: 20, 5: 10, 6: 0}
    results = {r.player_id: r for r in close_cohort(scores, 1, config)}
    assert [results[p].outcome for p in (1, 2, 3, 4, 5)] == [
        "promoted",
        "promoted",
        "stayed",
        "demoted",
        "demoted",
    ]
    assert results[1].next_tier == 2 and results[5].next_tier == 0
    assert results[6].outcome == "left" and results[6].next_tier == 1 and results[6].rank == 6


@given(
    scores=st.dictionaries(st.integers(1, 10_000), st.integers(-5, 1000), max_size=40),
    tier=st.integers(0, 9),
    ups=st.integers(0, 15),
    downs=st.integers(0, 15),
)
def test_close_cohort_properties(scores: dict[int, int], tier: int, ups: int, downs: int) -> None:
    config = LeagueConfig.build(cohort_size=30, promote=ups, demote=downs)
    results = close_cohort(scores, tier, config)
    assert sorted(r.player_id for r in results) == sorted(scores)
    assert sorted(r.rank for r in results) == list(range(1, len(scores) + 1))
    active = sum(1 for x in scores.values() if x > 0)
    promoted = [r for r in results if r.outcome == "promoted"]
    demoted = [r for r in results if r.outcome == "demoted"]
    expected_up = min(config.promote_count(tier), active)
    assert len(promoted) == expected_up
    assert len(demoted) == min(config.demote_count(tier), active - expected_up)
    assert all(0 <= r.next_tier < len(config.tiers) for r in results)
    assert all(abs(r.next_tier - r.tier) <= 1 for r in results)
    # Nobody promoted has less XP than anyone who stayed or went down.
    if promoted and len(promoted) < len(results):
        others = [r.xp for r in results if r.outcome != "promoted"]
        assert min(r.xp for r in promoted) >= max(others)
