"""Assignment and Grade Services: a learner's progress (XP or the level reached toward the
course's goal, or the share of a badge set the learner holds) posted as a score on a line item
Questline creates, through an outbox delivered by a retrying job.

Optional per course: nothing is posted until an instructor turns it on with a goal. Rows are
queued in a transaction (on a learner's launch, when grades are turned on, and by
``questline lti grades sync`` on a schedule), then ``deliver_due`` posts them with no database
transaction open during the HTTP calls, and records each result: sent, or retried with
exponential backoff until QUESTLINE_MAX_ATTEMPTS, then ``dead`` for an operator to see.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from lti import services
from lti.errors import LtiRejected
from lti.keys import KeyUnavailable, SigningKeyCache
from lti.models import LtiCourse, LtiCourseMember, LtiLineItem, LtiScorePost
from lti.visits import is_instructor
from questline.db import Database
from questline.ingest import upsert_ignore
from questline.models import Player, PlayerBadge
from questline.settings import Settings

log = logging.getLogger("questline.lti.grades")
LINE_ITEM_TAG = "questline-progress"
LINE_ITEM_LABEL = "Questline progress"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


MEASURES = {"xp": "XP", "level": "level", "badges": "badges of the set"}
MAX_BADGE_SET = 50


def badge_set(raw: str | list[str] | None) -> list[str]:
    """The badge ids of a badge-set grade, from the form (comma or space separated) or a list:
    distinct, in the order given; refused when empty, too long or not badge ids."""
    items = raw.replace(",", " ").split() if isinstance(raw, str) else list(raw or [])
    ids = list(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not ids:
        raise LtiRejected("invalid_choice", "a badge-set grade needs at least one badge id")
    if len(ids) > MAX_BADGE_SET:
        raise LtiRejected("invalid_choice", f"a badge set has at most {MAX_BADGE_SET} badges")
    bad = [i for i in ids if len(i) > 100 or not i.isprintable()]
    if bad:
        raise LtiRejected("invalid_choice", f"not a badge id: {bad[0][:40]!r}")
    return ids


def enable(
    session: Session,
    course: LtiCourse,
    goal_xp: int,
    now: datetime,
    measure: str = "xp",
    badge_ids: list[str] | None = None,
) -> int:
    """Turn grade posting on for a course and queue every learner's current progress.
    ``measure`` is what counts toward ``goal_xp``: XP earned, or the level reached; for
    "badges" the goal is the size of ``badge_ids`` and ``goal_xp`` is ignored."""
    if measure not in MEASURES:
        raise LtiRejected("invalid_choice", f"measure must be one of {', '.join(MEASURES)}")
    if measure == "badges":
        badge_ids = badge_set(badge_ids)
        goal_xp = len(badge_ids)
    if goal_xp <= 0:
        raise LtiRejected("invalid_choice", "the goal must be a positive number")
    if not course.ags_lineitems_url or SCORE_SCOPE not in (course.ags_scopes or []):
        raise LtiRejected("ags_unavailable", "the platform offers no grade service for this course")
    course.ags_enabled = True
    course.ags_measure = measure
    course.ags_goal_xp = goal_xp
    course.ags_badge_ids = badge_ids if measure == "badges" else None
    return queue_progress(session, course, None, now)


def _badges_held(
    session: Session, course: LtiCourse, player_ids: list[int], now: datetime
) -> dict[int, int]:
    """How many badges of the course's set each player holds: awarded in this course or
    tenant-wide, not revoked, not expired. Tiers of one badge count once."""
    rows = session.execute(
        select(PlayerBadge.player_id, func.count(func.distinct(PlayerBadge.badge_id)))
        .where(
            PlayerBadge.tenant_id == course.tenant_id,
            PlayerBadge.player_id.in_(player_ids),
            PlayerBadge.badge_id.in_(course.ags_badge_ids or []),
            PlayerBadge.scope.in_(["*", course.context_id]),
            PlayerBadge.revoked_at.is_(None),
            or_(PlayerBadge.expires_at.is_(None), PlayerBadge.expires_at > now),
        )
        .group_by(PlayerBadge.player_id)
    )
    return {player_id: int(count) for player_id, count in rows}


def queue_progress(
    session: Session, course: LtiCourse, player_ids: list[int] | None, now: datetime
) -> int:
    """Queue score posts for the course's learners (or only ``player_ids``)."""
    if not course.ags_enabled or not course.ags_goal_xp:
        return 0
    query = (
        select(
            LtiCourseMember.player_id,
            LtiCourseMember.user_sub,
            LtiCourseMember.roles,
            Player.level if course.ags_measure == "level" else Player.xp,
        )
        .join(Player, Player.id == LtiCourseMember.player_id)
        .where(LtiCourseMember.course_id == course.id)
    )
    if player_ids is not None:
        query = query.where(LtiCourseMember.player_id.in_(player_ids))
    goal = float(course.ags_goal_xp)
    last = _last_scores(session, course.id, player_ids)
    count = 0
    members = session.execute(query).all()
    if course.ags_measure == "badges":
        held = _badges_held(session, course, [m[0] for m in members], now)
        members = [(m[0], m[1], m[2], held.get(m[0], 0)) for m in members]
    for player_id, sub, roles, progress in members:
        score = (min(float(progress), goal), goal)
        if is_instructor(roles) or last.get(player_id) == score:
            continue
        session.add(
            LtiScorePost(
                tenant_id=course.tenant_id,
                course_id=course.id,
                player_id=player_id,
                user_sub=sub,
                score_given=score[0],
                score_maximum=score[1],
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        count += 1
    return count


def _last_scores(
    session: Session, course_id: int, player_ids: list[int] | None = None
) -> dict[int, tuple[float, float]]:
    """Each learner's (or only ``player_ids``') most recent score that is sent or on its way
    (not given up on): the same progress is not posted twice. A launch asks for one learner,
    not the whole course's history."""
    latest = (
        select(func.max(LtiScorePost.id))
        .where(LtiScorePost.course_id == course_id, LtiScorePost.status != "dead")
        .group_by(LtiScorePost.player_id)
    )
    if player_ids is not None:
        latest = latest.where(LtiScorePost.player_id.in_(player_ids))
    rows = session.execute(
        select(LtiScorePost.player_id, LtiScorePost.score_given, LtiScorePost.score_maximum).where(
            LtiScorePost.id.in_(latest)
        )
    )
    return {player_id: (given, maximum) for player_id, given, maximum in rows}


def queue_all(session: Session, now: datetime) -> int:
    """The scheduled pass (``questline lti grades sync``): queue changed progress in every
    course whose instructor turned grades on."""
    courses = session.scalars(select(LtiCourse).where(LtiCourse.ags_enabled.is_(True)))
    return sum(queue_progress(session, course, None, now) for course in courses)


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    next_due: datetime | None = None


def deliver_due(
    database: Database, settings: Settings, keys: SigningKeyCache, now: datetime, limit: int = 200
) -> DeliveryStats:
    """Post every due score; no transaction is open while the HTTP calls run."""
    stats = DeliveryStats()
    with database.sessions() as session:
        rows = session.scalars(
            select(LtiScorePost)
            .where(LtiScorePost.status == "pending", LtiScorePost.next_attempt_at <= now)
            .order_by(LtiScorePost.id)
            .limit(limit)
        ).all()
        by_course: dict[int, list[LtiScorePost]] = {}
        for row in rows:
            by_course.setdefault(row.course_id, []).append(row)
        outcomes: dict[int, str | None] = {}
        created: list[LtiLineItem] = []
        for course_id, posts in by_course.items():
            course = session.get(LtiCourse, course_id)
            assert course is not None
            try:
                service = services.ags(services.connector(session, course, keys), course)
                line_item, new = _line_item(session, service, course)
                if new is not None:
                    created.append(new)
            except (LtiException, requests.RequestException, KeyUnavailable) as exc:
                outcomes.update({p.id: f"line item: {exc}" for p in posts})
                continue
            for post in posts:
                outcomes[post.id] = _post(service, line_item, post, now)
        session.rollback()  # nothing was written while the HTTP calls ran
    with database.session() as session:
        for item in created:
            session.execute(
                upsert_ignore(session, LtiLineItem),
                [
                    {
                        "tenant_id": item.tenant_id,
                        "course_id": item.course_id,
                        "tag": item.tag,
                        "lineitem_url": item.lineitem_url,
                        "score_maximum": item.score_maximum,
                        "created_at": now,
                    }
                ],
            )
        for post_id, error in outcomes.items():
            row = session.get(LtiScorePost, post_id)
            assert row is not None
            row.attempts += 1
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", now, None
                stats.sent += 1
            elif row.attempts >= settings.max_attempts:
                row.status, row.last_error = "dead", error[:2000]
                stats.dead += 1
                log.error("score post gave up", extra={"tenant_id": row.tenant_id, "error": error})
            else:
                delay = timedelta(seconds=settings.retry_base_seconds * 2 ** (row.attempts - 1))
                row.next_attempt_at, row.last_error = now + delay, error[:2000]
                stats.retried += 1
                if stats.next_due is None or row.next_attempt_at < stats.next_due:
                    stats.next_due = row.next_attempt_at
    return stats


def _line_item(
    session: Session, service: AssignmentsGradesService, course: LtiCourse
) -> tuple[LineItem, LtiLineItem | None]:
    stored = session.scalar(
        select(LtiLineItem).where(
            LtiLineItem.course_id == course.id, LtiLineItem.tag == LINE_ITEM_TAG
        )
    )
    if stored is not None:
        return LineItem({"id": stored.lineitem_url, "scoreMaximum": stored.score_maximum}), None
    wanted = (
        LineItem()
        .set_tag(LINE_ITEM_TAG)
        .set_label(LINE_ITEM_LABEL)
        .set_score_maximum(float(course.ags_goal_xp or 100))
        .set_resource_id("questline")
    )
    item = service.find_or_create_lineitem(wanted)
    record = LtiLineItem(
        tenant_id=course.tenant_id,
        course_id=course.id,
        tag=LINE_ITEM_TAG,
        lineitem_url=item.get_id(),
        score_maximum=float(item.get_score_maximum() or course.ags_goal_xp or 100),
    )
    return item, record


def _post(
    service: AssignmentsGradesService, line_item: LineItem, post: LtiScorePost, now: datetime
) -> str | None:
    grade = (
        Grade()
        .set_score_given(post.score_given)
        .set_score_maximum(post.score_maximum)
        .set_user_id(post.user_sub)
        .set_timestamp(now.isoformat())
        .set_activity_progress(
            "Completed" if post.score_given >= post.score_maximum else "InProgress"
        )
        .set_grading_progress("FullyGraded")
    )
    try:
        service.put_grade(grade, line_item)
    except (LtiException, requests.RequestException) as exc:
        return str(exc) or type(exc).__name__
    return None
