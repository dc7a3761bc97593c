"""AGS score posts and NRPS roster sync against the independent platform's services: the
platform issues tokens only after verifying our client assertion against /lti/jwks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

from click.testing import CliRunner
from rq import Queue
from sqlalchemy import select, update

from lti.grades import deliver_due
from lti.keys import SigningKeyCache
from lti.models import LtiCourse, LtiCourseMember, LtiLineItem, LtiScorePost
from lti.roster import sync_course
from questline.cli import main
from questline.models import Player, PlayerBadge
from tests.lti.conftest import LtiWorld
from tests.lti.platform import LEARNER


def _course(world: LtiWorld) -> LtiCourse:
    with world.db.sessions() as session:
        course = session.scalar(select(LtiCourse).where(LtiCourse.tenant_id == world.tenant_id))
        assert course is not None
        return course


def _deliver(world: LtiWorld, now: datetime) -> object:
    keys = SigningKeyCache(world.ctx.settings.secret_key)
    return deliver_due(world.db, world.ctx.settings, keys, now)


def _queued_jobs(world: LtiWorld) -> list[tuple[str, tuple[object, ...]]]:
    queue = Queue(world.ctx.settings.queue_name, connection=world.ctx.redis)
    return [(job.func_name, job.args) for job in queue.jobs]


def test_instructor_turns_grades_on_and_scores_reach_the_platform(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    with lti_world.db.session() as session:
        session.execute(
            update(Player).where(Player.tenant_id == lti_world.tenant_id).values(xp=250)
        )
    browser = lti_world.browser()
    page = platform.launch(browser, platform.users["teacher-1"])
    action = re.search(r'action="([^"]*/lti/grades/[^"]+)"', page.text)
    assert action is not None, page.text
    answer = browser.post(urljoin(lti_world.tool_url, action.group(1)), data={"goal_xp": "1000"})
    assert answer.status_code == 200, answer.text
    assert '<span id="queued">1</span>' in answer.text
    assert ("lti.jobs.deliver_scores", ()) in _queued_jobs(lti_world)

    stats = _deliver(lti_world, datetime.now(UTC))
    assert stats.sent == 1  # type: ignore[attr-defined]
    assert platform.problems == []
    [item] = platform.line_items
    assert (item["label"], item["scoreMaximum"], item["tag"]) == (
        "Questline progress",
        1000.0,
        "questline-progress",
    )
    [score] = platform.scores
    assert score["userId"] == "learner-1"
    assert (score["scoreGiven"], score["scoreMaximum"]) == (250.0, 1000.0)
    assert score["activityProgress"] == "InProgress"

    # A later visit with the same progress posts nothing; once the XP moved, the next visit
    # posts again, on the same line item (created once, found again by our table).
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    assert _deliver(lti_world, datetime.now(UTC)).sent == 0  # type: ignore[attr-defined]
    with lti_world.db.session() as session:
        session.execute(
            update(Player).where(Player.tenant_id == lti_world.tenant_id).values(xp=400)
        )
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    assert _deliver(lti_world, datetime.now(UTC)).sent == 1  # type: ignore[attr-defined]
    assert len(platform.line_items) == 1 and len(platform.scores) == 2
    assert platform.scores[-1]["scoreGiven"] == 400.0
    with lti_world.db.sessions() as session:
        assert session.scalar(select(LtiLineItem.lineitem_url)) == item["id"]


def test_a_refused_score_post_is_retried_with_backoff_then_sent(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    course = _course(lti_world)
    with lti_world.db.session() as session:
        from lti.grades import enable

        enable(session, session.get(LtiCourse, course.id), 500, datetime.now(UTC))  # type: ignore[arg-type]
    platform.fail_scores = 1
    now = datetime.now(UTC)
    first = _deliver(lti_world, now)
    assert (first.sent, first.retried) == (0, 1)  # type: ignore[attr-defined]
    with lti_world.db.sessions() as session:
        row = session.scalar(select(LtiScorePost).where(LtiScorePost.course_id == course.id))
        assert row is not None and row.status == "pending" and row.attempts == 1
        assert "503" in (row.last_error or "") or "busy" in (row.last_error or "")
        assert row.next_attempt_at > now
    assert _deliver(lti_world, now).sent == 0  # type: ignore[attr-defined]  # not due yet
    later = now + timedelta(seconds=lti_world.ctx.settings.retry_base_seconds + 1)
    assert _deliver(lti_world, later).sent == 1  # type: ignore[attr-defined]
    assert len(platform.scores) == 1


def test_a_score_post_gives_up_after_max_attempts(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    course = _course(lti_world)
    with lti_world.db.session() as session:
        from lti.grades import enable

        enable(session, session.get(LtiCourse, course.id), 500, datetime.now(UTC))  # type: ignore[arg-type]
    platform.fail_scores = 100
    when = datetime.now(UTC)
    for _ in range(lti_world.ctx.settings.max_attempts):
        _deliver(lti_world, when)
        when += timedelta(hours=1)
    with lti_world.db.sessions() as session:
        row = session.scalar(select(LtiScorePost).where(LtiScorePost.course_id == course.id))
        assert row is not None and row.status == "dead"
        assert row.attempts == lti_world.ctx.settings.max_attempts


def test_grades_stay_off_until_an_instructor_turns_them_on(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    assert _deliver(lti_world, datetime.now(UTC)).sent == 0  # type: ignore[attr-defined]
    assert platform.scores == [] and platform.line_items == []


def test_instructor_launch_syncs_the_roster(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    for n in range(2, 6):
        platform.add_user(f"learner-{n}", f"Learner {n}", [LEARNER])
    assert platform.launch(lti_world.browser(), platform.users["teacher-1"]).status_code == 200
    course = _course(lti_world)
    assert ("lti.jobs.sync_roster", (course.id,)) in _queued_jobs(lti_world)

    keys = SigningKeyCache(lti_world.ctx.settings.secret_key)
    result = sync_course(lti_world.db, keys, course.id, datetime.now(UTC))
    assert platform.problems == []
    assert result.members == 6  # five learners and the teacher
    assert result.created == 5  # the teacher already had a player from the launch
    with lti_world.db.sessions() as session:
        names = set(
            session.scalars(
                select(Player.display_name).where(Player.tenant_id == lti_world.tenant_id)
            )
        )
        assert {"Learner 2", "Learner 5", "Lea Learner", "Ted Teacher"} <= names
        members = session.scalars(
            select(LtiCourseMember).where(LtiCourseMember.course_id == course.id)
        ).all()
        assert len(members) == 6
        synced = session.get(LtiCourse, course.id)
        assert synced is not None and synced.roster_synced_at is not None
    # Syncing again creates nobody; a later launch of a synced learner finds their player.
    again = sync_course(lti_world.db, keys, course.id, datetime.now(UTC))
    assert again.created == 0
    assert platform.launch(lti_world.browser(), platform.users["learner-3"]).status_code == 200
    with lti_world.db.sessions() as session:
        count = len(
            session.scalars(select(Player.id).where(Player.tenant_id == lti_world.tenant_id)).all()
        )
        assert count == 6


def test_scheduled_roster_and_grades_commands(lti_world: LtiWorld, monkeypatch) -> None:
    """`questline lti roster sync` and `questline lti grades sync` as cron would run them."""
    settings = lti_world.ctx.settings
    for name, value in {
        "QUESTLINE_DATABASE_URL": settings.database_url,
        "QUESTLINE_REDIS_URL": settings.redis_url or "",
        "QUESTLINE_REDIS_PREFIX": settings.redis_prefix,
        "QUESTLINE_SECRET_KEY": settings.secret_key,
    }.items():
        monkeypatch.setenv(name, value)
    platform = lti_world.platform
    platform.add_user("learner-2", "Learner Two", [LEARNER])
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    course = _course(lti_world)
    runner = CliRunner()

    synced = runner.invoke(main, ["lti", "roster", "sync", "--course", str(course.id)])
    assert synced.exit_code == 0, synced.output
    assert f"course {course.id}: 3 members, 2 new players" in synced.output

    with lti_world.db.session() as session:
        session.execute(
            update(Player).where(Player.tenant_id == lti_world.tenant_id).values(xp=120)
        )
        row = session.get(LtiCourse, course.id)
        assert row is not None
        row.ags_enabled, row.ags_goal_xp = True, 200
    graded = runner.invoke(main, ["lti", "grades", "sync"])
    assert graded.exit_code == 0, graded.output
    assert "queued 2; sent 2" in graded.output  # two learners; the instructor is not graded
    assert sorted(s["userId"] for s in platform.scores) == ["learner-1", "learner-2"]
    again = runner.invoke(main, ["lti", "grades", "sync"])
    assert "queued 0; sent 0" in again.output  # unchanged progress is not posted twice


def test_the_level_reached_can_be_the_grade(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    with lti_world.db.session() as session:
        session.execute(
            update(Player).where(Player.tenant_id == lti_world.tenant_id).values(xp=900, level=3)
        )
    browser = lti_world.browser()
    page = platform.launch(browser, platform.users["teacher-1"])
    action = re.search(r'action="([^"]*/lti/grades/[^"]+)"', page.text)
    assert action is not None and 'name="measure"' in page.text
    url = urljoin(lti_world.tool_url, action.group(1))
    bad = browser.post(url, data={"goal_xp": "5", "measure": "karma"})
    assert bad.status_code == 400 and "invalid_choice" in bad.text
    answer = browser.post(url, data={"goal_xp": "5", "measure": "level"})
    assert answer.status_code == 200, answer.text
    assert _deliver(lti_world, datetime.now(UTC)).sent == 1  # type: ignore[attr-defined]
    [score] = platform.scores
    assert (score["scoreGiven"], score["scoreMaximum"]) == (3.0, 5.0)
    with lti_world.db.sessions() as session:
        course = session.get(LtiCourse, _course(lti_world).id)
        assert course is not None and course.ags_measure == "level"


def _badge(world: LtiWorld, player_id: int, badge_id: str, scope: str, **extra: object) -> None:
    now = datetime.now(UTC)
    with world.db.session() as session:
        session.add(
            PlayerBadge(
                tenant_id=world.tenant_id,
                player_id=player_id,
                idempotency_key=f"test:{badge_id}:{scope}:{extra.get('tier', 1)}",
                badge_id=badge_id,
                name=badge_id.title(),
                tier=extra.pop("tier", 1),
                tier_name="",
                scope=scope,
                explanation="test",
                awarded_at=now,
                **extra,
            )
        )


def test_a_badge_set_completed_can_be_the_grade(lti_world: LtiWorld) -> None:
    """The share of a chosen badge set the learner holds, posted to the platform's AGS:
    tiers count once; revoked, expired and other courses' badges do not count."""
    platform = lti_world.platform
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    with lti_world.db.sessions() as session:
        learner = session.scalar(select(Player.id).where(Player.tenant_id == lti_world.tenant_id))
    assert learner is not None
    yesterday = datetime.now(UTC) - timedelta(days=1)
    _badge(lti_world, learner, "reader", "*")
    _badge(lti_world, learner, "reader", "*", tier=2)
    _badge(lti_world, learner, "helper", platform.context_id)
    _badge(lti_world, learner, "finisher", "*", revoked_at=yesterday)
    _badge(lti_world, learner, "early-bird", "*", expires_at=yesterday)
    _badge(lti_world, learner, "sprinter", "another-course")
    browser = lti_world.browser()
    page = platform.launch(browser, platform.users["teacher-1"])
    action = re.search(r'action="([^"]*/lti/grades/[^"]+)"', page.text)
    assert action is not None and 'value="badges"' in page.text
    url = urljoin(lti_world.tool_url, action.group(1))
    for bad in ("", " , ", "x" * 101):
        refused = browser.post(url, data={"measure": "badges", "badges": bad})
        assert refused.status_code == 400 and "invalid_choice" in refused.text
    chosen = "reader, helper finisher early-bird sprinter"
    answer = browser.post(url, data={"measure": "badges", "badges": chosen})
    assert answer.status_code == 200, answer.text
    assert '<strong id="goal">5</strong>' in answer.text
    assert _deliver(lti_world, datetime.now(UTC)).sent == 1  # type: ignore[attr-defined]
    [score] = platform.scores
    assert score["userId"] == "learner-1"
    assert (score["scoreGiven"], score["scoreMaximum"]) == (2.0, 5.0)
    with lti_world.db.sessions() as session:
        course = session.get(LtiCourse, _course(lti_world).id)
        assert course is not None and course.ags_measure == "badges"
        assert course.ags_badge_ids == ["reader", "helper", "finisher", "early-bird", "sprinter"]
    # The learner earns one more badge of the set: the next sync posts the new share.
    _badge(lti_world, learner, "finisher", "*", tier=3)
    with lti_world.db.session() as session:
        from lti.grades import queue_all

        assert queue_all(session, datetime.now(UTC)) == 1
    assert _deliver(lti_world, datetime.now(UTC)).sent == 1  # type: ignore[attr-defined]
    assert (platform.scores[-1]["scoreGiven"], platform.scores[-1]["scoreMaximum"]) == (3.0, 5.0)


def test_a_launch_queues_only_its_learners_changed_progress(lti_world: LtiWorld) -> None:
    """On a launch only that learner's last score is consulted (not the whole course's)."""
    from lti.grades import enable, queue_progress

    platform = lti_world.platform
    platform.add_user("learner-2", "Lee Two", [LEARNER])
    for sub in ("learner-1", "learner-2"):
        assert platform.launch(lti_world.browser(), platform.users[sub]).status_code == 200
    course = _course(lti_world)
    with lti_world.db.session() as session:
        assert enable(session, session.get(LtiCourse, course.id), 500, datetime.now(UTC)) == 2  # type: ignore[arg-type]
    with lti_world.db.session() as session:
        first, second = session.scalars(
            select(Player.id).where(Player.tenant_id == lti_world.tenant_id).order_by(Player.id)
        ).all()
        row = session.get(LtiCourse, course.id)
        assert row is not None
        assert queue_progress(session, row, [first], datetime.now(UTC)) == 0  # unchanged
        session.execute(update(Player).where(Player.id == second).values(xp=250))
        assert queue_progress(session, row, [first], datetime.now(UTC)) == 0
        assert queue_progress(session, row, [second], datetime.now(UTC)) == 1
