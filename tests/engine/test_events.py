"""The canonical event: round trips, and every invalid field named precisely."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from engine.events import (
    ActivityEvent,
    Actor,
    FieldError,
    InvalidEvent,
    Result,
    parse_event,
    parse_timestamp,
)


def valid(**changes: Any) -> dict[str, Any]:
    """A minimal valid event, with top-level keys replaced (``None`` removes a key)."""
    event: dict[str, Any] = {
        "id": "evt-1",
        "type": "lesson.completed",
        "actor": {"id": "learner-1"},
        "occurred_at": "2026-03-01T10:00:00Z",
    }
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def full() -> dict[str, Any]:
    """An event using every documented field."""
    return {
        "id": "attempt-42",
        "source": "moodle.prod:eu-1",
        "type": "quiz.submitted",
        "actor": {
            "id": "u-17",
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "timezone": "Europe/Paris",
        },
        "occurred_at": "2026-03-01T10:15:30.250000+01:00",
        "object": {"id": "quiz-7", "type": "quiz"},
        "context": {"course": "math-101"},
        "result": {"score": 0.85, "passed": True, "duration": 312.5},
        "extensions": {"attempt": 2, "tags": ["algebra"], "nested": {"k": "v"}},
    }


def errors_of(data: Any) -> list[FieldError]:
    with pytest.raises(InvalidEvent) as info:
        parse_event(data)
    return info.value.errors


def only_error(data: Any) -> FieldError:
    errors = errors_of(data)
    assert len(errors) == 1, errors
    return errors[0]


# --- valid events -------------------------------------------------------------------------------


def test_full_event_parses_every_field() -> None:
    event = parse_event(full())
    assert event == ActivityEvent(
        id="attempt-42",
        source="moodle.prod:eu-1",
        type="quiz.submitted",
        actor=Actor(
            id="u-17", email="ada@example.com", name="Ada Lovelace", timezone="Europe/Paris"
        ),
        occurred_at=datetime(2026, 3, 1, 10, 15, 30, 250000, tzinfo=timezone(timedelta(hours=1))),
        object_id="quiz-7",
        object_type="quiz",
        course="math-101",
        result=Result(score=0.85, passed=True, duration=312.5),
        extensions={"attempt": 2, "tags": ["algebra"], "nested": {"k": "v"}},
    )


@pytest.mark.parametrize("data", [full(), valid()], ids=["full", "minimal"])
def test_round_trip_through_to_dict(data: dict[str, Any]) -> None:
    event = parse_event(data)
    again = parse_event(event.to_dict())
    assert again == event
    # The offset survives too, not just the instant.
    assert again.occurred_at.utcoffset() == event.occurred_at.utcoffset()
    assert again.to_dict() == event.to_dict()


def test_to_dict_of_minimal_event_omits_absent_parts() -> None:
    assert parse_event(valid()).to_dict() == {
        "id": "evt-1",
        "source": "api",
        "type": "lesson.completed",
        "actor": {"id": "learner-1"},
        "occurred_at": "2026-03-01T10:00:00+00:00",
    }


def test_to_dict_keeps_false_and_zero_results() -> None:
    event = parse_event(valid(result={"score": 0, "passed": False, "duration": 0}))
    assert event.result == Result(score=0.0, passed=False, duration=0.0)
    assert event.to_dict()["result"] == {"score": 0.0, "passed": False, "duration": 0.0}
    assert parse_event(event.to_dict()) == event


def test_parse_does_not_mutate_input() -> None:
    data = full()
    snapshot = copy.deepcopy(data)
    parse_event(data)
    assert data == snapshot


def test_email_is_lower_cased() -> None:
    event = parse_event(valid(actor={"email": "  Ada.Lovelace@Example.COM "}))
    assert event.actor == Actor(email="ada.lovelace@example.com")


def test_actor_with_only_email_is_enough() -> None:
    assert parse_event(valid(actor={"email": "x@example.com"})).actor.id is None


def test_text_fields_are_stripped_and_integer_ids_become_strings() -> None:
    event = parse_event(valid(id=12345, actor={"id": 77}, context={"course": "  c1  "}))
    assert event.id == "12345"
    assert event.actor.id == "77"
    assert event.course == "c1"
    assert parse_event(valid(id="  evt-1  ")).id == "evt-1"


def test_integer_score_becomes_float() -> None:
    event = parse_event(valid(result={"score": 1}))
    assert event.result.score == 1.0
    assert isinstance(event.result.score, float)


def test_unknown_event_types_are_accepted_if_well_formed() -> None:
    # The type is a format, not a closed list: rules decide what an event is worth.
    assert parse_event(valid(type="badge.shared_publicly")).type == "badge.shared_publicly"
    assert parse_event(valid(type="a.b.c9")).type == "a.b.c9"


# --- source -------------------------------------------------------------------------------------


def test_source_defaults_to_api() -> None:
    assert parse_event(valid()).source == "api"


def test_default_source_can_be_chosen_by_the_adapter() -> None:
    assert parse_event(valid(), default_source="lti").source == "lti"
    # An explicit source in the event wins over the adapter's default.
    assert parse_event(valid(source="moodle"), default_source="lti").source == "moodle"


@pytest.mark.parametrize("source", ["moodle", "a", "x1.y_z:w-v", "0", "s" * 64])
def test_valid_sources(source: str) -> None:
    assert parse_event(valid(source=source)).source == source


@pytest.mark.parametrize(
    "source",
    ["Moodle", "", "-api", ".api", "my source", "s" * 65, "api/v1", "api\n", 5, True, ["api"]],
)
def test_invalid_sources(source: Any) -> None:
    assert only_error(valid(source=source)) == FieldError(
        "source", "must be 1-64 lowercase letters, digits or . _ : -"
    )


def test_trailing_newline_source_does_not_alias_another_source() -> None:
    # Regression: ``re.match`` with ``$`` accepted "api\n", a distinct source (and idempotency
    # key prefix) that looks identical to "api" in logs.
    with pytest.raises(InvalidEvent):
        parse_event(valid(source="api\n"))


# --- required fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["id", "type", "actor", "occurred_at"])
def test_missing_required_field_is_named(missing: str) -> None:
    assert only_error(valid(**{missing: None})) == FieldError(missing, "is required")


@pytest.mark.parametrize("missing", ["id", "type", "actor", "occurred_at"])
def test_explicit_null_required_field_is_named(missing: str) -> None:
    data = valid()
    data[missing] = None
    assert only_error(data) == FieldError(missing, "is required")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 256, "must be at most 255 characters"),
        (True, "must be a string"),
        (1.5, "must be a string"),
        (["evt-1"], "must be a string"),
        ({"id": 1}, "must be a string"),
    ],
)
def test_bad_id(value: Any, message: str) -> None:
    assert only_error(valid(id=value)) == FieldError("id", message)


def test_id_at_max_length_is_accepted() -> None:
    assert parse_event(valid(id="x" * 255)).id == "x" * 255


# --- type ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "lesson",
        "Lesson.Completed",
        "lesson completed",
        "lesson.",
        ".completed",
        "lesson..completed",
        "lesson.completed!",
        "1lesson.completed",
        "lesson.1completed",
        "lesson-completed",
    ],
)
def test_bad_type_format(value: str) -> None:
    assert only_error(valid(type=value)) == FieldError(
        "type", "must be a dotted lowercase verb such as lesson.completed"
    )


def test_type_too_long() -> None:
    value = "a." + "b" * 99
    assert only_error(valid(type=value)) == FieldError("type", "must be at most 100 characters")


# --- actor --------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [{}, {"name": "Ada"}, {"timezone": "UTC"}, {"id": None}])
def test_actor_needs_id_or_email(actor: dict[str, Any]) -> None:
    assert only_error(valid(actor=actor)) == FieldError("actor", "needs an id or an email")


@pytest.mark.parametrize("actor", ["learner-1", ["learner-1"], 7])
def test_actor_must_be_object(actor: Any) -> None:
    assert only_error(valid(actor=actor)) == FieldError("actor", "must be an object")


@pytest.mark.parametrize("email", ["not-an-email", "@example.com", "example.com"])
def test_bad_email_is_named_and_not_doubled(email: str) -> None:
    # Only the email is wrong: no extra "needs an id or an email" on top.
    assert only_error(valid(actor={"email": email})) == FieldError(
        "actor.email", "must be an email address"
    )


def test_bad_email_with_good_id_still_rejected() -> None:
    assert only_error(valid(actor={"id": "u1", "email": "nope"})) == FieldError(
        "actor.email", "must be an email address"
    )


def test_bad_actor_id_is_named_without_needs_id_error() -> None:
    assert only_error(valid(actor={"id": ""})) == FieldError("actor.id", "must not be empty")


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "Europe/Paris/Extra", "../../etc/passwd", "Etc", "America"]
)
def test_bad_timezone(zone: str) -> None:
    # "Etc" and "America" are tzdata directories: ZoneInfo raises IsADirectoryError for them,
    # which used to escape parse_event as a crash instead of a field error.
    assert only_error(valid(actor={"id": "u1", "timezone": zone})) == FieldError(
        "actor.timezone", "must be an IANA time zone name such as Europe/Paris"
    )


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Pacific/Kiritimati", "Etc/GMT+5"])
def test_good_timezone(zone: str) -> None:
    assert parse_event(valid(actor={"id": "u1", "timezone": zone})).actor.timezone == zone


# --- object, context, extensions ----------------------------------------------------------------


def test_object_without_id() -> None:
    assert only_error(valid(object={"type": "lesson"})) == FieldError(
        "object.id", "is required when object is given"
    )


def test_object_with_bad_id_is_reported_once() -> None:
    assert only_error(valid(object={"id": "  ", "type": "lesson"})) == FieldError(
        "object.id", "must not be empty"
    )


@pytest.mark.parametrize("key", ["object", "context", "result", "extensions"])
def test_nested_sections_must_be_objects(key: str) -> None:
    assert only_error(valid(**{key: ["x"]})) == FieldError(key, "must be an object")


def test_course_comes_from_context() -> None:
    assert parse_event(valid(context={"course": "bio-2"})).course == "bio-2"
    assert only_error(valid(context={"course": "c" * 256})) == FieldError(
        "context.course", "must be at most 255 characters"
    )


# --- result -------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", [0, 0.0, 0.5, 1, 1.0])
def test_score_in_range(score: float) -> None:
    assert parse_event(valid(result={"score": score})).result.score == score


@pytest.mark.parametrize("score", [-0.01, 1.0001, 2, -1, 100])
def test_score_out_of_range(score: float) -> None:
    assert only_error(valid(result={"score": score})) == FieldError(
        "result.score", "must be between 0 and 1"
    )


@pytest.mark.parametrize(
    "score",
    ["0.5", True, False, math.nan, math.inf, -math.inf, [0.5], {"v": 1}, 10**400],
    ids=["str", "true", "false", "nan", "inf", "-inf", "list", "dict", "huge-int"],
)
def test_score_not_a_number(score: Any) -> None:
    # 10**400 is what json.loads gives for a 401-digit literal; float() of it overflows, which
    # used to escape as OverflowError instead of a field error.
    assert only_error(valid(result={"score": score})) == FieldError(
        "result.score", "must be a number"
    )


@pytest.mark.parametrize("passed", ["true", 1, 0, "yes", [True]])
def test_passed_must_be_bool(passed: Any) -> None:
    assert only_error(valid(result={"passed": passed})) == FieldError(
        "result.passed", "must be true or false"
    )


def test_negative_duration() -> None:
    assert only_error(valid(result={"duration": -1})) == FieldError(
        "result.duration", "must be at least 0"
    )


@pytest.mark.parametrize(
    "duration",
    [math.inf, math.nan, True, "60", 10**400],
    ids=["inf", "nan", "true", "str", "huge-int"],
)
def test_duration_not_a_number(duration: Any) -> None:
    assert only_error(valid(result={"duration": duration})) == FieldError(
        "result.duration", "must be a number"
    )


def test_large_duration_has_no_upper_bound() -> None:
    assert parse_event(valid(result={"duration": 10**9})).result.duration == 1e9


# --- occurred_at --------------------------------------------------------------------------------


def test_naive_timestamp_is_refused_with_time_zone_message() -> None:
    error = only_error(valid(occurred_at="2026-03-01T10:00:00"))
    assert error.field == "occurred_at"
    assert "time zone" in error.message
    assert error.message == "must include a time zone offset (for example Z or +02:00)"


def test_date_only_is_refused_as_naive() -> None:
    error = only_error(valid(occurred_at="2026-03-01"))
    assert error.field == "occurred_at"
    assert "time zone" in error.message


@pytest.mark.parametrize("stamp", ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00z"])
def test_z_suffix_is_utc(stamp: str) -> None:
    moment = parse_event(valid(occurred_at=stamp)).occurred_at
    assert moment == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


def test_offset_is_kept_and_instant_is_right() -> None:
    moment = parse_event(valid(occurred_at="2026-03-01T10:00:00+05:30")).occurred_at
    assert moment.utcoffset() == timedelta(hours=5, minutes=30)
    assert moment == datetime(2026, 3, 1, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "must be an ISO 8601 timestamp"),
        ("2026-13-01T00:00:00Z", "must be an ISO 8601 timestamp"),
        ("2026-03-01T10:00:00+25:00", "must be an ISO 8601 timestamp"),
        ("", "must be an ISO 8601 timestamp"),
        (1772359200, "must be an ISO 8601 timestamp string"),
        (["2026-03-01T10:00:00Z"], "must be an ISO 8601 timestamp string"),
    ],
)
def test_unparseable_timestamp(value: Any, message: str) -> None:
    assert only_error(valid(occurred_at=value)) == FieldError("occurred_at", message)


def test_parse_timestamp_directly() -> None:
    assert parse_timestamp(" 2026-01-01T00:00:00Z ") == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="time zone"):
        parse_timestamp("2026-01-01T00:00:00")


# --- the event as a whole -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [[], ["evt"], "evt-1", 42, None, True])
def test_non_object_event(data: Any) -> None:
    assert errors_of(data) == [FieldError("$", "an event must be a JSON object")]


def test_several_errors_are_reported_at_once() -> None:
    data = {
        "source": "BAD SOURCE",
        "type": "Nope",
        "actor": {"email": "nobody", "timezone": "Nowhere/Land"},
        "occurred_at": "2026-03-01T10:00:00",
        "object": {"type": "quiz"},
        "result": {"score": 7, "passed": "yes", "duration": -5},
    }
    errors = errors_of(data)
    assert {e.field for e in errors} == {
        "id",
        "source",
        "type",
        "actor.email",
        "actor.timezone",
        "object.id",
        "result.score",
        "result.passed",
        "result.duration",
        "occurred_at",
    }
    assert len(errors) == 10  # each field once
    with pytest.raises(InvalidEvent) as info:
        parse_event(data)
    text = str(info.value)
    assert "id: is required" in text
    assert "result.score: must be between 0 and 1" in text


def test_invalid_event_is_a_value_error_with_serialisable_errors() -> None:
    with pytest.raises(ValueError) as info:
        parse_event(valid(id=None))
    assert isinstance(info.value, InvalidEvent)
    assert [e.as_dict() for e in info.value.errors] == [{"field": "id", "message": "is required"}]


def test_read_stored_trusts_the_canonical_form_and_validates_anything_else() -> None:
    from engine.events import InvalidEvent, parse_event, read_stored

    event = parse_event(
        {"id": "e1", "source": "api", "type": "quiz.submitted", "actor": {"id": "ada"},
         "occurred_at": "2026-11-20T10:00:00Z", "result": {"score": 0.9, "passed": True}}
    )  # fmt: skip
    assert read_stored(event.to_dict()) == event
    headless = event.to_dict()
    del headless["actor"]
    with pytest.raises(InvalidEvent):  # no one to credit: full validation refuses it
        read_stored(headless)
    with pytest.raises(InvalidEvent):
        read_stored({"id": "poison", "type": "???"})
