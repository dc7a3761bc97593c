"""Every example in examples/rules is checked: the good ones load and score as documented, the
broken one reports exactly its errors."""

from __future__ import annotations

import pytest

from engine.rules import InvalidRules, parse_rules
from tests.conftest import event
from tests.rules.helpers import EXAMPLES, ledger, post, xp_by_actor
from workers.rulesets import read_document, store_version


def load(name: str):
    return read_document((EXAMPLES / name).read_text())


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_every_example_file_is_checked(path):
    """Any file in examples/rules (other helpers add theirs too) parses, as a course set when
    its name starts with ``course-``; only ``broken.yaml`` is meant to fail."""
    document = read_document(path.read_text())
    if path.name == "broken.yaml":
        with pytest.raises(InvalidRules):
            parse_rules(document)
        return
    parse_rules(document, scope="course" if path.name.startswith("course-") else "tenant")


@pytest.mark.parametrize(
    ("name", "scope", "rules", "multipliers"),
    [
        ("tenant.yaml", "tenant", 6, 1),
        ("course-math-101.yaml", "course", 3, 1),
        ("v1-compatible.json", "tenant", 4, 0),
    ],
)
def test_good_examples_parse(name, scope, rules, multipliers):
    parsed = parse_rules(load(name), scope=scope)
    assert (len(parsed.xp), len(parsed.multipliers)) == (rules, multipliers)


def test_broken_example_lists_every_error():
    with pytest.raises(InvalidRules) as info:
        parse_rules(load("broken.yaml"))
    assert info.value.errors == [
        "xp[0].id: must be 1-100 lowercase letters, digits or . _ -",
        "xp[0].points: unknown name 'grade' (known: duration, passed, score)",
        "xp[1].cap.per_day: must be a positive integer (XP)",
        "xp[1].cooldown: must be seconds or a duration such as 30s, 10m, 1d",
        "multipliers[0].factor: must be a number above 0 and at most 10",
        "multipliers[0].from: must include a time zone offset (for example Z or +02:00)",
        "levels.table: thresholds must strictly increase",
    ]


def quiz(event_id, actor, score, obj, at="2026-11-20T10:00:00Z", course="course-1"):
    return event(
        event_id,
        type="quiz.submitted",
        actor=actor,
        score=score,
        at=at,
        course=course,
        object={"id": obj, "type": "quiz"},
    )


def test_tenant_and_course_examples_score_as_documented(client, db, tenant):
    with db.session() as session:
        store_version(session, tenant.id, load("tenant.yaml"), course=None, actor="test")
        store_version(
            session, tenant.id, load("course-math-101.yaml"), course="math-101", actor="test"
        )
    post(
        client,
        tenant,
        # ann: an ace on q1 (95 + 50), a retake capped at 100 per object (5 more), no 2nd ace.
        quiz("q1", "ann", 0.95, "q1"),
        quiz("q1b", "ann", 1.0, "q1", at="2026-11-20T11:00:00Z"),
        # bob: exam week doubles both quiz rules: 2 x 90 = 180, capped at 100 per object, and
        # 2 x 50 for the ace.
        quiz("q2", "bob", 0.9, "q7", at="2026-12-08T10:00:00Z"),
        # cy: lessons, 10 each, the same lesson within 5 minutes earns nothing.
        event("l1", actor="cy", at="2026-11-20T10:00:00Z", object={"id": "l", "type": "lesson"}),
        event("l2", actor="cy", at="2026-11-20T10:03:00Z", object={"id": "l", "type": "lesson"}),
        # dee, in math-101: lessons earn 5 there, capped at 30 a day; sessions earn nothing.
        *[
            event(f"m{i}", actor="dee", course="math-101", at=f"2026-11-20T1{i}:00:00Z")
            for i in range(8)
        ],
        event("s1", type="session.started", actor="dee", course="math-101"),
    )
    assert xp_by_actor(db, tenant) == {"ann": 150, "bob": 200, "cy": 10, "dee": 30}
    explained = {key: text for key, _amount, text in ledger(db, tenant)}
    assert explained["api|q1|quiz-ace"] == (
        "rule `quiz-ace` matched quiz.submitted event q1: +50 XP "
        "(object type quiz; score 0.95 >= 0.9; first time on object q1)"
    )
    assert explained["api|q1b|quiz-graded"].endswith("capped at 100 XP per object)")
    assert "x2 multiplier `exam-week`" in explained["api|q2|quiz-ace"]
    # Six lessons reach the cap; the 7th and 8th are left with 0 XP, and 0 is not written.
    assert [k for k in explained if k.startswith("api|m")] == [
        f"api|m{i}|lesson-completed" for i in range(6)
    ]
    assert "api|s1|session-started" not in explained  # switched off in math-101
