"""Streaks count days in the player's own zone: DST, half-hour offsets, UTC+14, leap days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.streaks import Streak, extend, local_day


def utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


def run(moments: list[datetime], zone: str, start: Streak | None = None) -> list[Streak]:
    """The streak after each activity, in order."""
    streak = start or Streak()
    out = []
    for moment in moments:
        streak = extend(streak, local_day(moment, zone))
        out.append(streak)
    return out


# --- local_day ----------------------------------------------------------------------------------


def test_same_instant_is_a_different_day_in_auckland_and_utc() -> None:
    moment = utc("2026-01-15T11:30:00")  # 00:30 on the 16th in Auckland (NZDT, UTC+13)
    assert local_day(moment, "UTC") == date(2026, 1, 15)
    assert local_day(moment, "Pacific/Auckland") == date(2026, 1, 16)


def test_one_instant_three_dates() -> None:
    moment = utc("2026-06-01T10:30:00")
    assert local_day(moment, "Pacific/Kiritimati") == date(2026, 6, 2)  # UTC+14
    assert local_day(moment, "UTC") == date(2026, 6, 1)
    assert local_day(moment, "Pacific/Pago_Pago") == date(2026, 5, 31)  # UTC-11


@pytest.mark.parametrize(
    ("stamp", "day"),
    [("2026-06-01T09:59:59", date(2026, 6, 1)), ("2026-06-01T10:00:00", date(2026, 6, 2))],
)
def test_kiritimati_midnight_is_ten_utc(stamp: str, day: date) -> None:
    assert local_day(utc(stamp), "Pacific/Kiritimati") == day


def test_local_day_ignores_the_offset_the_event_was_written_in() -> None:
    written_in_tokyo = datetime.fromisoformat("2026-01-16T08:00:00+09:00")  # 23:00 UTC on 15th
    assert local_day(written_in_tokyo, "UTC") == date(2026, 1, 15)
    assert local_day(written_in_tokyo, "Asia/Tokyo") == date(2026, 1, 16)


def test_auckland_learner_gets_two_days_within_one_utc_date() -> None:
    # 23:00 on the 15th and 00:30 on the 16th in Auckland: both on 15 January in UTC.
    moments = [utc("2026-01-15T10:00:00"), utc("2026-01-15T11:30:00")]
    assert run(moments, "Pacific/Auckland")[-1] == Streak(2, 2, date(2026, 1, 16))
    assert run(moments, "UTC")[-1] == Streak(1, 1, date(2026, 1, 15))


def test_one_auckland_day_spanning_two_utc_dates() -> None:
    # 01:00 and 23:00 on 16 January in Auckland: 15th and 16th in UTC.
    moments = [utc("2026-01-15T12:00:00"), utc("2026-01-16T10:00:00")]
    assert run(moments, "Pacific/Auckland")[-1] == Streak(1, 1, date(2026, 1, 16))
    assert run(moments, "UTC")[-1] == Streak(2, 2, date(2026, 1, 16))


# --- DST ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "day"),
    [
        ("2026-03-08T04:59:59", date(2026, 3, 7)),  # 23:59:59 EST
        ("2026-03-08T05:00:00", date(2026, 3, 8)),  # 00:00 EST
        ("2026-03-08T06:59:59", date(2026, 3, 8)),  # 01:59:59 EST, then clocks jump
        ("2026-03-08T07:00:00", date(2026, 3, 8)),  # 03:00 EDT
        ("2026-03-09T03:59:59", date(2026, 3, 8)),  # 23:59:59 EDT: a 23-hour day
        ("2026-03-09T04:00:00", date(2026, 3, 9)),
    ],
)
def test_new_york_spring_forward_day_bounds(stamp: str, day: date) -> None:
    assert local_day(utc(stamp), "America/New_York") == day


def test_new_york_spring_forward_day_counts_once() -> None:
    moments = [
        utc("2026-03-08T04:30:00"),  # 23:30 on the 7th
        utc("2026-03-08T06:30:00"),  # 01:30 EST on the 8th
        utc("2026-03-08T07:30:00"),  # 03:30 EDT on the 8th
        utc("2026-03-09T03:30:00"),  # 23:30 EDT on the 8th
        utc("2026-03-09T04:30:00"),  # 00:30 on the 9th
    ]
    assert [s.current for s in run(moments, "America/New_York")] == [1, 2, 2, 2, 3]
    assert run(moments, "America/New_York")[-1] == Streak(3, 3, date(2026, 3, 9))


@pytest.mark.parametrize(
    ("stamp", "day"),
    [
        ("2026-11-01T03:59:59", date(2026, 10, 31)),  # 23:59:59 EDT
        ("2026-11-01T04:00:00", date(2026, 11, 1)),  # 00:00 EDT
        ("2026-11-01T05:30:00", date(2026, 11, 1)),  # 01:30 EDT
        ("2026-11-01T06:30:00", date(2026, 11, 1)),  # 01:30 EST, the repeated hour
        ("2026-11-02T04:59:59", date(2026, 11, 1)),  # 23:59:59 EST: a 25-hour day
        ("2026-11-02T05:00:00", date(2026, 11, 2)),
    ],
)
def test_new_york_fall_back_day_bounds(stamp: str, day: date) -> None:
    assert local_day(utc(stamp), "America/New_York") == day


def test_new_york_fall_back_day_counts_once() -> None:
    moments = [
        utc("2026-10-31T12:00:00"),
        utc("2026-11-01T05:30:00"),  # 01:30 EDT
        utc("2026-11-01T06:30:00"),  # 01:30 EST: same wall clock, same day, an hour later
        utc("2026-11-02T04:30:00"),  # 23:30 EST, still the 1st
        utc("2026-11-02T05:30:00"),  # 00:30 on the 2nd
    ]
    assert [s.current for s in run(moments, "America/New_York")] == [1, 2, 2, 2, 3]


@pytest.mark.parametrize(
    ("stamp", "day"),
    [
        ("2026-01-10T12:59:00", date(2026, 1, 10)),  # summer: UTC+11
        ("2026-01-10T13:00:00", date(2026, 1, 11)),
        ("2026-06-10T13:29:00", date(2026, 6, 10)),  # winter: UTC+10:30
        ("2026-06-10T13:30:00", date(2026, 6, 11)),
        ("2026-04-04T12:59:00", date(2026, 4, 4)),  # DST ends 5 April 02:00 -> 01:30
        ("2026-04-04T13:00:00", date(2026, 4, 5)),
        ("2026-04-05T13:29:00", date(2026, 4, 5)),  # a 24.5-hour day
        ("2026-04-05T13:30:00", date(2026, 4, 6)),
        ("2026-10-03T13:29:00", date(2026, 10, 3)),  # DST starts 4 October 02:00 -> 02:30
        ("2026-10-03T13:30:00", date(2026, 10, 4)),
        ("2026-10-04T12:59:00", date(2026, 10, 4)),  # a 23.5-hour day
        ("2026-10-04T13:00:00", date(2026, 10, 5)),
    ],
)
def test_lord_howe_half_hour_dst(stamp: str, day: date) -> None:
    assert local_day(utc(stamp), "Australia/Lord_Howe") == day


def test_lord_howe_dst_end_day_counts_once() -> None:
    moments = [
        utc("2026-04-04T12:00:00"),  # 23:00 on the 4th (UTC+11)
        utc("2026-04-04T14:45:00"),  # 01:45 UTC+11 on the 5th
        utc("2026-04-04T15:15:00"),  # 01:45 UTC+10:30: the repeated half hour
        utc("2026-04-05T13:15:00"),  # 23:45 on the 5th
        utc("2026-04-05T13:45:00"),  # 00:15 on the 6th
    ]
    assert [s.current for s in run(moments, "Australia/Lord_Howe")] == [1, 2, 2, 2, 3]


# --- leap days and year ends --------------------------------------------------------------------


def test_leap_day_is_a_day() -> None:
    days = [date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)]
    streak = Streak()
    for day in days:
        streak = extend(streak, day)
    assert streak == Streak(3, 3, date(2028, 3, 1))


def test_skipping_the_leap_day_breaks_the_streak() -> None:
    streak = extend(extend(Streak(), date(2028, 2, 28)), date(2028, 3, 1))
    assert streak == Streak(1, 1, date(2028, 3, 1))


def test_non_leap_february_runs_straight_into_march() -> None:
    streak = extend(extend(Streak(), date(2026, 2, 28)), date(2026, 3, 1))
    assert streak == Streak(2, 2, date(2026, 3, 1))


def test_leap_day_in_a_zone_ahead_of_utc() -> None:
    moment = utc("2028-02-28T11:00:00")  # 00:00 on the 29th in Auckland (UTC+13)
    assert local_day(moment, "Pacific/Auckland") == date(2028, 2, 29)
    assert local_day(moment, "UTC") == date(2028, 2, 28)


def test_year_boundary_is_consecutive() -> None:
    streak = extend(extend(Streak(), date(2026, 12, 31)), date(2027, 1, 1))
    assert streak == Streak(2, 2, date(2027, 1, 1))


# --- extend -------------------------------------------------------------------------------------


def test_first_activity_starts_a_streak() -> None:
    assert extend(Streak(), date(2026, 5, 1)) == Streak(1, 1, date(2026, 5, 1))


def test_first_activity_keeps_a_longer_historic_longest() -> None:
    assert extend(Streak(0, 9, None), date(2026, 5, 1)) == Streak(1, 9, date(2026, 5, 1))


def test_consecutive_days_extend() -> None:
    streak = Streak(4, 4, date(2026, 5, 1))
    assert extend(streak, date(2026, 5, 2)) == Streak(5, 5, date(2026, 5, 2))


def test_same_day_changes_nothing() -> None:
    streak = Streak(4, 7, date(2026, 5, 1))
    assert extend(streak, date(2026, 5, 1)) == streak


@pytest.mark.parametrize("gap_days", [2, 3, 30, 400])
def test_gap_resets_to_one_keeping_longest(gap_days: int) -> None:
    streak = Streak(5, 5, date(2026, 5, 1))
    day = date.fromordinal(date(2026, 5, 1).toordinal() + gap_days)
    assert extend(streak, day) == Streak(1, 5, day)


def test_extending_past_the_longest_raises_it() -> None:
    streak = Streak(3, 3, date(2026, 5, 3))
    streak = extend(streak, date(2026, 5, 5))  # gap
    assert streak == Streak(1, 3, date(2026, 5, 5))
    for day in (6, 7, 8):
        streak = extend(streak, date(2026, 5, day))
    assert streak == Streak(4, 4, date(2026, 5, 8))


@pytest.mark.parametrize("days_back", [1, 2, 365])
def test_late_event_never_breaks_a_streak(days_back: int) -> None:
    streak = Streak(6, 8, date(2026, 5, 10))
    late = date.fromordinal(date(2026, 5, 10).toordinal() - days_back)
    assert extend(streak, late) == streak


def test_streak_continues_normally_after_a_late_event() -> None:
    streak = Streak(2, 2, date(2026, 5, 10))
    streak = extend(streak, date(2026, 5, 1))
    streak = extend(streak, date(2026, 5, 11))
    assert streak == Streak(3, 3, date(2026, 5, 11))
