"""Quests in the pure engine: progress per local day / ISO week / dated window, completed once,
course-bound, XP objectives, old periods pruned, parse errors with paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.decisions import QuestCompleted
from engine.evaluate import PlayerState, evaluate
from engine.events import parse_event
from engine.rules import InvalidRules, RuleBook, parse_rules

QUESTS: list[dict[str, Any]] = [
    {
        "id": "daily-quiz",
        "name": "Two quizzes a day",
        "period": "daily",
        "objectives": [{"count": 2, "of": {"on": "quiz.submitted", "when": {"passed": True}}}],
        "reward": {"xp": 20, "currency": 5},
    },
    {
        "id": "weekly-xp",
        "name": "Earn 30 XP this week",
        "period": "weekly",
        "objectives": [{"xp": 30}],
        "reward": {"currency": 10},
    },
    {
        "id": "launch",
        "name": "Launch week",
        "period": "dated",
        "from": "2026-11-20T00:00:00Z",
        "until": "2026-11-27T00:00:00Z",
        "objectives": [{"sum_of": "duration", "at_least": 600}],
        "reward": {"xp": 50},
    },
]
RULES = {"xp": [{"id": "quiz", "on": "quiz.submitted", "points": 10}], "quests": QUESTS}


def quiz(n: int, at: str, passed: bool = True, duration: float = 0, course: str = "c1") -> Any:
    return parse_event(
        {
            "id": str(n),
            "type": "quiz.submitted",
            "actor": {"id": "ann"},
            "object": {"id": f"q{n}", "type": "quiz"},
            "context": {"course": course},
            "result": {"passed": passed, "duration": duration},
            "occurred_at": at,
        }
    )


def run(rules: Any, events: list[Any], zone: str = "UTC") -> tuple[list[Any], PlayerState]:
    state, out = PlayerState(), []
    for event in events:
        decisions, state = evaluate(event, state, rules, zone)
        out += decisions
    return out, state


def completed(decisions: list[Any]) -> list[tuple[str, str]]:
    return [(d.quest_id, d.period) for d in decisions if isinstance(d, QuestCompleted)]


def test_daily_quest_completes_once_per_local_day() -> None:
    rules = parse_rules(RULES)
    decisions, state = run(
        rules,
        [
            quiz(1, "2026-11-23T09:00:00Z"),
            quiz(2, "2026-11-23T10:00:00Z", passed=False),  # does not count
            quiz(3, "2026-11-23T11:00:00Z"),
            quiz(4, "2026-11-23T12:00:00Z"),  # already complete: no second decision
            quiz(5, "2026-11-24T09:00:00Z"),
            quiz(6, "2026-11-24T09:30:00Z"),
        ],
    )
    assert [c for c in completed(decisions) if c[0] == "daily-quiz"] == [
        ("daily-quiz", "2026-11-23"),
        ("daily-quiz", "2026-11-24"),
    ]
    (text,) = [d.explanation for d in decisions if isinstance(d, QuestCompleted)][:1]
    assert text == (
        "quest `daily-quiz` Two quizzes a day completed for 2026-11-23 with event 3: "
        "2 x quiz.submitted (2)"
    )
    assert state.counters.quests["daily-quiz|2026-11-23"] == {"v": [3.0], "done": True}


def test_the_day_is_the_players_local_day() -> None:
    rules = parse_rules(RULES)
    # 23:30 and 00:30 UTC are one day in Kiritimati (UTC+14) and two days in UTC.
    events = [quiz(1, "2026-11-23T09:30:00Z"), quiz(2, "2026-11-23T10:30:00Z")]
    assert ("daily-quiz", "2026-11-23") in completed(run(rules, events, "UTC")[0])
    split = [quiz(1, "2026-11-23T09:30:00Z"), quiz(2, "2026-11-23T10:30:00Z")]
    assert not [c for c in completed(run(rules, split, "Pacific/Kiritimati")[0]) if "daily" in c[0]]


def test_weekly_xp_objective_uses_the_iso_week() -> None:
    rules = parse_rules(RULES)
    # Sunday 2026-11-29 ends ISO week 48; Monday 2026-11-30 starts week 49.
    decisions, _ = run(
        rules,
        [
            quiz(1, "2026-11-28T10:00:00Z"),
            quiz(2, "2026-11-29T10:00:00Z"),
            quiz(3, "2026-11-30T10:00:00Z"),
            quiz(4, "2026-12-01T10:00:00Z"),
            quiz(5, "2026-12-02T10:00:00Z"),
        ],
    )
    assert [c for c in completed(decisions) if c[0] == "weekly-xp"] == [("weekly-xp", "2026-W49")]


def test_dated_quest_counts_only_inside_its_window() -> None:
    rules = parse_rules(RULES)
    before, _ = run(rules, [quiz(1, "2026-11-19T23:00:00Z", duration=900)])
    assert not [c for c in completed(before) if c[0] == "launch"]
    inside, _ = run(
        rules,
        [
            quiz(1, "2026-11-21T10:00:00Z", duration=300),
            quiz(2, "2026-11-22T10:00:00Z", duration=300),
        ],
    )
    assert ("launch", "dated") in completed(inside)


def test_course_quests_only_see_their_course() -> None:
    tenant = parse_rules({"xp": []})
    course = parse_rules({"quests": [QUESTS[0]]}, scope="course")
    book = RuleBook(tenant, {"c1": course})
    other, _ = run(
        book,
        [quiz(1, "2026-11-23T09:00:00Z", course="c2")] * 1
        + [quiz(2, "2026-11-23T10:00:00Z", course="c2")],
    )
    assert completed(other) == []
    mine, _ = run(book, [quiz(1, "2026-11-23T09:00:00Z"), quiz(2, "2026-11-23T10:00:00Z")])
    assert completed(mine) == [("daily-quiz", "2026-11-23")]
    assert [q.course for q in book.all_quests()] == ["c1"]


def test_only_two_periods_are_kept() -> None:
    rules = parse_rules(RULES)
    start = datetime(2026, 11, 1, 10, tzinfo=UTC)
    events = [quiz(i, (start + timedelta(days=i)).isoformat()) for i in range(6)]
    _, state = run(rules, events)
    assert sorted(k for k in state.counters.quests if k.startswith("daily-quiz|")) == [
        "daily-quiz|2026-11-05",
        "daily-quiz|2026-11-06",
    ]


def test_replay_gives_the_same_progress() -> None:
    rules = parse_rules(RULES)
    events = [quiz(i, f"2026-11-23T0{i}:00:00Z") for i in range(1, 6)]
    assert run(rules, events) == run(rules, events)


@pytest.mark.parametrize(
    ("quest", "error"),
    [
        ({**QUESTS[0], "period": "monthly"}, "quests[0].period: must be daily, weekly or dated"),
        ({**QUESTS[0], "objectives": []}, "quests[0].objectives: must be a list of 1 to 10"),
        (
            {**QUESTS[0], "objectives": [{"count": 0}]},
            "quests[0].objectives[0].count: must be a positive integer",
        ),
        ({**QUESTS[0], "reward": {"xp": -1}}, "quests[0].reward.xp: must be an integer"),
        ({**QUESTS[0], "reward": {"badge": "nope"}}, "quests[0].reward.badge: unknown badge id"),
        ({**QUESTS[2], "until": "2026-11-01T00:00:00Z"}, "quests[0].until: must be after from"),
        ({**QUESTS[0], "from": "2026-11-01T00:00:00Z"}, "quests[0]: from and until are for"),
        ({**QUESTS[0], "colour": "red"}, "quests[0].colour: unknown field"),
    ],
)
def test_quest_errors_have_paths(quest: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidRules) as caught:
        parse_rules({"quests": [quest]})
    assert any(e.startswith(error) for e in caught.value.errors), caught.value.errors


def test_shop_errors_have_paths() -> None:
    with pytest.raises(InvalidRules) as caught:
        parse_rules(
            {
                "shop": [
                    {"id": "a", "price": 5},
                    {"id": "a", "price": 0, "limit": 0},
                ]
            }
        )
    assert caught.value.errors == [
        "shop[1].id: duplicate shop item id 'a'",
        "shop[1].price: must be an integer from 1 to 1000000",
        "shop[1].limit: must be a positive integer",
    ]
    with pytest.raises(InvalidRules) as caught:
        parse_rules({"shop": []}, scope="course")
    assert caught.value.errors == ["shop: only the tenant rule set defines the shop"]
