"""Whole launches against the independent platform: learner and instructor."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from lti.models import LtiCourse, LtiCourseMember, LtiLoginState, LtiUsedNonce
from questline.models import InboxEvent, Player, PlayerIdentity
from tests.lti.conftest import LtiWorld
from tests.lti.platform import LEARNER, post_form


def test_learner_launch_creates_player_and_records_a_visit(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    learner = platform.users["learner-1"]
    response = platform.launch(lti_world.browser(), learner)
    assert response.status_code == 200, response.text
    assert 'id="lv-title"' in response.text  # the default widget, the level bar
    assert platform.problems == []

    actor = f"lti:{lti_world.registration_id}:learner-1"
    with lti_world.db.sessions() as session:
        identity = session.scalar(
            select(PlayerIdentity).where(
                PlayerIdentity.tenant_id == lti_world.tenant_id, PlayerIdentity.value == actor
            )
        )
        assert identity is not None
        player = session.get(Player, identity.player_id)
        assert player is not None
        assert (player.display_name, player.email) == ("Lea Learner", "learner-1@example.edu")
        events = session.scalars(
            select(InboxEvent).where(InboxEvent.tenant_id == lti_world.tenant_id)
        ).all()
        assert [e.event_type for e in events] == ["session.started"]
        assert events[0].source == f"lti:{lti_world.registration_id}"
        assert events[0].canonical["actor"]["id"] == actor
        assert events[0].canonical["context"] == {"course": platform.context_id}
        # The inline dispatcher ran the pipeline: the visit reached the player.
        assert events[0].status == "applied"
        assert events[0].player_id == player.id
        member = session.scalar(
            select(LtiCourseMember).where(LtiCourseMember.player_id == player.id)
        )
        assert member is not None and member.roles == learner.roles
        assert member.user_sub == "learner-1"
        course = session.get(LtiCourse, member.course_id)
        assert course is not None
        assert course.nrps_url == platform.base + "/memberships"
        assert course.ags_lineitems_url == platform.base + "/lineitems"
        # The login stored nothing; the launch recorded its nonce (which makes the state,
        # signed and bound to that nonce, single-use).
        nonces = session.scalars(
            select(LtiUsedNonce).where(LtiUsedNonce.registration_id == lti_world.registration_id)
        ).all()
        assert len(nonces) == 1
        assert session.scalars(select(LtiLoginState)).all() == []


def test_second_launch_updates_the_same_player(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    learner = platform.users["learner-1"]
    assert platform.launch(lti_world.browser(), learner).status_code == 200
    learner.name = "Lea Renamed"
    assert platform.launch(lti_world.browser(), learner).status_code == 200
    with lti_world.db.sessions() as session:
        players = session.scalars(
            select(Player).where(Player.tenant_id == lti_world.tenant_id)
        ).all()
        assert [p.display_name for p in players] == ["Lea Renamed"]
        visits = session.scalars(
            select(InboxEvent.event_key).where(InboxEvent.tenant_id == lti_world.tenant_id)
        ).all()
        assert len(set(visits)) == 2


def test_instructor_launch_shows_the_course_players(lti_world: LtiWorld) -> None:
    platform = lti_world.platform
    assert platform.launch(lti_world.browser(), platform.users["learner-1"]).status_code == 200
    response = platform.launch(lti_world.browser(), platform.users["teacher-1"])
    assert response.status_code == 200, response.text
    assert "Course dashboard" in response.text
    assert "Introduction to Testing" in response.text
    assert "Lea Learner" in response.text and "Ted Teacher" in response.text


def test_a_class_launching_at_once_creates_one_course(lti_world: LtiWorld) -> None:
    """The first launches of a course arrive together; none may fail on the course or
    membership rows another launch is creating at the same moment."""
    platform = lti_world.platform
    subs = [f"learner-{n}" for n in range(2, 8)]
    for sub in subs:
        platform.add_user(sub, sub.title(), [LEARNER])
    logins = []
    for sub in subs:
        browser = lti_world.browser()
        logins.append((browser, platform.start_login(browser, platform.users[sub])))
    with ThreadPoolExecutor(max_workers=len(logins)) as pool:
        statuses = list(pool.map(lambda login: post_form(*login).status_code, logins))
    assert statuses == [200] * len(subs)
    with lti_world.db.sessions() as session:
        courses = session.scalars(
            select(LtiCourse.id).where(LtiCourse.tenant_id == lti_world.tenant_id)
        ).all()
        assert len(courses) == 1
        members = session.scalars(
            select(LtiCourseMember.user_sub).where(LtiCourseMember.course_id == courses[0])
        ).all()
        assert sorted(members) == sorted(subs)
