"""Inputs that used to pass validation and then crash later: far-off dates, non-text YAML keys,
event types that are not event types."""

from __future__ import annotations

import pytest

from engine.events import InvalidEvent, parse_event
from engine.rules import InvalidRules, parse_rules
from engine.streaks import local_day


def _event(when: str) -> dict[str, object]:
    return {"id": "e1", "type": "lesson.completed", "actor": {"id": "a"}, "occurred_at": when}


@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1969-12-31T23:59:59Z"],
)
def test_extreme_dates_are_refused_with_a_field_error(when: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(_event(when))
    assert [e.field for e in caught.value.errors] == ["occurred_at"]
    assert "between the years 1970 and 2999" in str(caught.value)


@pytest.mark.parametrize("when", ["1970-01-01T00:00:00+14:00", "2999-12-31T23:59:59-12:00"])
def test_the_edges_of_the_range_parse_and_have_a_local_day(when: str) -> None:
    event = parse_event(_event(when))
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "UTC"):
        assert local_day(event.occurred_at, zone).year in (1969, 1970, 2999, 3000)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({1: []}, "$: keys must be text, not 1"),
        ({"xp": [{"id": "a", "on": "a.b", "points": 1, True: 2}]}, "xp[0]: keys must be text"),
        ({"xp": [{"id": "a", "on": "a.b", "points": 1, "when": {None: 1}}]}, "xp[0].when: keys"),
    ],
)
def test_non_text_keys_are_errors_not_type_errors(document: object, expected: str) -> None:
    with pytest.raises(InvalidRules) as caught:
        parse_rules(document)
    assert any(error.startswith(expected) for error in caught.value.errors), caught.value.errors


@pytest.mark.parametrize("on", ["Lesson Completed", "lesson", "", 5, "lesson.Completed"])
def test_xp_rule_on_must_be_an_event_type(on: object) -> None:
    with pytest.raises(InvalidRules) as caught:
        parse_rules({"xp": [{"id": "a", "on": on, "points": 1}]})
    assert caught.value.errors == ["xp[0].on: must be an event type such as lesson.completed"]


def test_badge_filter_on_must_be_event_types() -> None:
    badge = {"id": "b", "name": "B", "criteria": {"count": 1, "of": {"on": ["a.b", "NOPE"]}}}
    with pytest.raises(InvalidRules) as caught:
        parse_rules({"badges": [badge]})
    assert caught.value.errors == [
        "badges[0].criteria.of.on: must be an event type or a list of them"
    ]
