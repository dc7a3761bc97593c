"""Every fixture parses to the expected canonical event: learner, type, time and key.

The traps from the fixtures README are asserted explicitly: Canvas raw's learner is not the
grading teacher and course_completed's local ids become global ones; Caliper's GradeEvent credits
the assignee, not the scorer; HubSpot's key leaves out attemptNumber; Moodle credits
relateduserid; xAPI without a timestamp takes the time the LRS stored it.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from engine.events import ActivityEvent, parse_event
from tests.webhooks.helpers import fixture_bytes, fixture_json, info
from webhooks import caliper, canvas, hubspot, moodle, salesforce, standard, xapi
from webhooks.errors import BadSignature, InvalidPayload

RECEIVED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ROOT = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"


def _only(events: list[ActivityEvent]) -> ActivityEvent:
    assert len(events) == 1
    return events[0]


def _check(event: ActivityEvent, type_: str, learner: str, at: str, key: str) -> None:
    assert event.type == type_
    assert event.actor.id == f"cfixture:{learner}"
    assert event.occurred_at == datetime.fromisoformat(at)
    assert event.id == key
    # The canonical form round-trips through the documented parser: it is a valid event.
    again = parse_event(json.loads(json.dumps(event.to_dict())))
    assert again.id == event.id and again.type == event.type and again.actor == event.actor


CANVAS_RAW = [
    ("submission_created", "assignment.submitted", "21070000000014012",
     "2019-11-01T19:11:21.419+00:00",
     f"{ROOT}/submission_created/2019-11-01T19:11:21.419Z/21070000012345567/12"),
    # Graded by a teacher (metadata.user_id ...987): the learner is the student (body.user_id).
    ("submission_updated", "canvas.submission_updated", "21070000000000047",
     "2019-11-01T19:11:11.325+00:00",
     f"{ROOT}/submission_updated/2019-11-01T19:11:11.325Z/21070000000011176/1"),
    ("grade_change", "assignment.graded", "21070000000000048", "2019-11-01T19:11:05.222+00:00",
     f"{ROOT}/grade_change/2019-11-01T19:11:05.222Z/21070000000011086/"),
    # System-generated: no request id, user_id is an admin; the learner is student_id.
    ("grade_change.system_generated", "assignment.graded", "21070000000000048",
     "2019-11-01T00:07:59.125+00:00",
     f"{ROOT}/grade_change/2019-11-01T00:07:59.125Z/21070000000001234/"),
    ("quiz_submitted", "quiz.submitted", "21070000000987123", "2019-11-01T19:11:33.388+00:00",
     "01314161-1afc-0f2f-ffbf-1f31f5f0f972/quiz_submitted/2019-11-01T19:11:33.388Z/"
     "11210000013995723/"),
    ("logged_in", "session.started", "21070000000000001", "2019-11-01T19:11:01.335+00:00",
     f"{ROOT}/logged_in/2019-11-01T19:11:01.335Z/ef686f8ed684abf78cbfa1f6a58112b5/"),
    # Local ids (user 123, course 565) become global shard ids.
    ("course_completed", "course.completed", "21070000000000123",
     "2019-11-01T19:11:26.615+00:00",
     f"{ROOT}/course_completed/2019-11-01T19:11:26.615Z/21070000000000565/6"),
    ("course_progress", "canvas.course_progress", "21070000000001122",
     "2019-11-01T19:11:13.590+00:00",
     f"{ROOT}/course_progress/2019-11-01T19:11:13.590Z/21070000001234567/101"),
    # The enrolled user, not the admin who enrolled them.
    ("enrollment_created", "canvas.enrollment_created", "21070000000020064",
     "2018-10-09T21:07:33+00:00",
     f"{ROOT}/enrollment_created/2018-10-09T21:07:33Z/21070000000046825/2018-10-09T21:07:33Z"),
    ("asset_accessed", "canvas.asset_accessed", "21070000000000001",
     "2019-11-01T00:09:06.753+00:00",
     f"{ROOT}/asset_accessed/2019-11-01T00:09:06.753Z/21070000000000144/"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "type_", "learner", "at", "key"), CANVAS_RAW)
def test_canvas_raw(name: str, type_: str, learner: str, at: str, key: str) -> None:
    data = fixture_json(f"canvas/raw/{name}.json")
    event = _only(canvas.from_canvas_payload(data, info("canvas")))
    _check(event, type_, learner, at, key)
    assert event.source == "canvas:cfixture"


def test_canvas_grade_is_for_the_student_with_a_clamped_score() -> None:
    data = fixture_json("canvas/raw/grade_change.json")
    assert data["metadata"]["user_id"] == "21070000000000987"  # the teacher
    event = _only(canvas.from_canvas_payload(data, info("canvas")))
    assert event.actor.id == "cfixture:21070000000000048"
    assert event.result.score == 1.0  # 5 of 1 point possible: extra credit, clamped
    assert event.course == "21070000000000565"
    system = fixture_json("canvas/raw/grade_change.system_generated.json")
    assert _only(canvas.from_canvas_payload(system, info("canvas"))).result.score == 0.35


def test_canvas_course_completed_course_and_email() -> None:
    event = _only(canvas.from_canvas_payload(fixture_json("canvas/raw/course_completed.json"),
                                             info("canvas")))  # fmt: skip
    assert event.course == "21070000000000565"
    assert event.actor.email == "inewton@example.com"


def test_canvas_key_is_stable_and_differs_per_attempt() -> None:
    data = fixture_json("canvas/raw/submission_created.json")
    first = _only(canvas.from_canvas_payload(data, info("canvas")))
    again = _only(canvas.from_canvas_payload(copy.deepcopy(data), info("canvas")))
    assert first.id == again.id
    data["body"]["attempt"] = 13
    data["metadata"]["request_id"] = "another"
    assert _only(canvas.from_canvas_payload(data, info("canvas"))).id != first.id


CANVAS_CALIPER = [
    ("submission_created", "assignment.submitted", "21070000000014012",
     "2019-11-01T19:11:21.419+00:00", "urn:uuid:bd9dedcf-6fd9-4605-82d6-325c4e2adaf6"),
    # The actor is the grader (...987); the learner is object.assignee (...048).
    ("grade_change", "assignment.graded", "21070000000000048", "2019-11-01T19:11:05.222+00:00",
     "urn:uuid:319f0132-0584-4efd-9489-4959b7101731"),
    ("quiz_submitted", "quiz.submitted", "21070000000987123", "2019-11-01T19:11:33.388+00:00",
     "urn:uuid:06e01cb6-fdde-4327-b3f0-4c47a95d0f52"),
    ("logged_in", "session.started", "21070000000000001", "2019-11-01T19:11:01.335+00:00",
     "urn:uuid:2b6d64bf-5b31-4e2f-b389-c6ebcb232407"),
    ("asset_accessed", "caliper.navigation_event.navigated_to", "21070000000000001",
     "2019-11-01T00:09:06.700+00:00", "urn:uuid:d71bd983-d03a-4ef8-8701-71cfa7889eaf"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "type_", "learner", "at", "key"), CANVAS_CALIPER)
def test_canvas_caliper(name: str, type_: str, learner: str, at: str, key: str) -> None:
    data = fixture_json(f"canvas/caliper/{name}.json")
    event = _only(caliper.from_caliper_payload(data, info("canvas-caliper"), canvas=True))
    _check(event, type_, learner, at, key)


def test_canvas_raw_and_caliper_name_the_same_learner() -> None:
    raw = _only(canvas.from_canvas_payload(fixture_json("canvas/raw/grade_change.json"),
                                           info("canvas")))  # fmt: skip
    cal = _only(caliper.from_caliper_payload(fixture_json("canvas/caliper/grade_change.json"),
                                             info("canvas-caliper"), canvas=True))  # fmt: skip
    assert raw.actor.id == cal.actor.id and raw.course == cal.course


LEARNER = "https://example.edu/users/554433"
CALIPER = [
    ("caliperEventAssessmentSubmitted", "quiz.submitted", "2016-11-15T10:25:30+00:00",
     "urn:uuid:dad88464-0c20-4a19-a1ba-ddf2f9c3ff33"),
    # actor is https://example.edu/autograder; the learner is the attempt's assignee.
    ("caliperEventGradeGraded", "assignment.graded", "2016-11-15T10:57:06+00:00",
     "urn:uuid:a50ca17f-5971-47bb-8fca-4e6e6879001d"),
    ("caliperEventNavigationNavigatedTo", "caliper.navigation_event.navigated_to",
     "2016-11-15T10:15:00+00:00", "urn:uuid:ff9ec22a-fc59-4ae1-ae8d-2c9463ee2f8f"),
    ("caliperEventSessionLoggedIn", "session.started", "2016-11-15T10:15:00+00:00",
     "urn:uuid:fcd495d0-3740-4298-9bec-1154571dc211"),
    ("caliperEventAssessmentItemCompleted", "caliper.assessment_item_event.completed",
     "2016-11-15T10:15:12+00:00", "urn:uuid:e5891791-3d27-4df1-a272-091806a43dfb"),
    ("caliperEnvelopeEventSingle", "caliper.assessment_event.started",
     "2016-11-15T10:15:00+00:00", "urn:uuid:c51570e4-f8ed-4c18-bb3a-dfe51b2cc594"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "type_", "at", "key"), CALIPER)
def test_caliper(name: str, type_: str, at: str, key: str) -> None:
    event = _only(caliper.from_caliper_payload(fixture_json(f"caliper/{name}.json"),
                                               info("caliper")))  # fmt: skip
    _check(event, type_, LEARNER, at, key)


def test_caliper_grade_score_and_batch_envelope() -> None:
    data = fixture_json("caliper/caliperEventGradeGraded.json")
    graded = _only(caliper.from_caliper_payload(data, info("caliper")))
    assert graded.result.score == pytest.approx(10 / 15)
    batch = caliper.from_caliper_payload(fixture_json("caliper/caliperEnvelopeEventBatch.json"),
                                         info("caliper"))  # fmt: skip
    assert [e.id for e in batch] == [
        "urn:uuid:72f66ce5-d2ec-44cc-bce5-41602e1015dc",
        "urn:uuid:c0afa013-64df-453f-b0a6-50f3efbe4cc0",
        "urn:uuid:94bad4bd-a7b1-4c3e-ade4-2253efe65172",
    ]
    assert [e.type for e in batch] == [
        "caliper.navigation_event.navigated_to",
        "caliper.annotation_event.bookmarked",
        "caliper.view_event.viewed",
    ]
    assert {e.actor.id for e in batch} == {f"cfixture:{LEARNER}"}


XAPI = [
    ("statement.simplest_created", "xapi.created", "mbox:xapi@adlnet.gov",
     RECEIVED.isoformat(), "12345678-1234-5678-1234-567812345678"),
    ("statement.attempted_with_result", "xapi.attempted", "mbox:example.learner@adlnet.gov",
     "2015-12-18T12:17:00+00:00", "7ccd3322-e1a5-411a-a67d-6a735c76f119"),
    ("statement.attended_full", "xapi.attended", "mbox:teampb@example.com",
     "2013-05-18T05:32:34.804+00:00", "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"),
    ("statement.experienced.signed", "xapi.experienced", "mbox:example@example.com",
     "2013-04-01T12:00:00+00:00", "33cff416-e331-4c9d-969e-5373a1756120"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "type_", "learner", "at", "key"), XAPI)
def test_xapi(name: str, type_: str, learner: str, at: str, key: str) -> None:
    data = fixture_json(f"xapi/{name}.json")
    _check(_only(xapi.from_xapi_payload(data, info("xapi"), RECEIVED)), type_, learner, at, key)


def test_xapi_result_and_verbs() -> None:
    data = fixture_json("xapi/statement.attempted_with_result.json")
    event = _only(xapi.from_xapi_payload(data, info("xapi"), RECEIVED))
    assert (event.result.score, event.result.passed, event.result.duration) == (0.95, True, 1234)
    assert event.actor.email == "example.learner@adlnet.gov"
    data["verb"]["id"] = "http://adlnet.gov/expapi/verbs/completed"
    assert _only(xapi.from_xapi_payload(data, info("xapi"), RECEIVED)).type == "lesson.completed"
    data["verb"]["id"] = "http://adlnet.gov/expapi/verbs/passed"
    assert _only(xapi.from_xapi_payload(data, info("xapi"), RECEIVED)).type == "quiz.submitted"
    del data["id"]
    one = _only(xapi.from_xapi_payload(data, info("xapi"), RECEIVED)).id
    assert one.startswith("sha256:")
    assert _only(xapi.from_xapi_payload(copy.deepcopy(data), info("xapi"), RECEIVED)).id == one
    by_email = _only(xapi.from_xapi_payload(data, info("xapi", identity="email"), RECEIVED))
    assert by_email.actor.id is None and by_email.actor.email == "example.learner@adlnet.gov"


def test_moodle_fixture_and_related_user() -> None:
    data = fixture_json("moodle/local_webhooks.course_viewed.json")
    event = _only(moodle.from_moodle_payload(data, info("moodle")))
    _check(event, "moodle.core.course_viewed", "2", "2017-12-11T03:04:16+00:00",
           "localhost/\\core\\event\\course_viewed//1/2/1512961456")  # fmt: skip
    assert event.course == "1"
    completion = {**data, "eventname": "\\core\\event\\course_completed", "userid": "7",
                  "relateduserid": "42", "objectid": "9"}  # fmt: skip
    done = _only(moodle.from_moodle_payload(completion, info("moodle")))
    assert done.type == "course.completed" and done.actor.id == "cfixture:42"


def test_moodle_token_checked_in_constant_time_against_secrets() -> None:
    data = fixture_json("moodle/local_webhooks.course_viewed.json")
    with pytest.raises(BadSignature):
        moodle.check_token(data, info("moodle"))  # the published body has an empty token
    moodle.check_token({**data, "token": "s3cret"}, info("moodle"))


def test_hubspot_docs_batch_key_excludes_attempt_number() -> None:
    data = fixture_json("hubspot/webhook_batch.docs_example.json")
    events = hubspot.from_hubspot_payload(data, info("hubspot"), {})
    assert [e.id for e in events] == ["33/25/3816279340/1462216307945",
                                      "33/22/3816279480/1462216307945"]  # fmt: skip
    assert [e.type for e in events] == ["hubspot.contact.property_change",
                                        "hubspot.contact.creation"]  # fmt: skip
    assert events[0].actor.id == "cfixture:contact:1246965"
    assert events[0].occurred_at == datetime(2016, 5, 2, 19, 11, 47, 945000, tzinfo=UTC)
    for item in data:
        item["attemptNumber"] = 3  # a retry
    assert [e.id for e in hubspot.from_hubspot_payload(data, info("hubspot"), {})] == [
        e.id for e in events
    ]


def test_hubspot_deal_won_credits_the_owner() -> None:
    won = {"eventId": 9, "subscriptionId": 7, "portalId": 62515, "occurredAt": 1700000000000,
           "subscriptionType": "deal.propertyChange", "propertyName": "dealstage",
           "propertyValue": "closedwon", "objectId": 555, "attemptNumber": 0}  # fmt: skip
    owner = {**won, "eventId": 8, "propertyName": "hubspot_owner_id", "propertyValue": "321"}
    assert hubspot.owner_changes([owner, won])["555"][0] == "321"
    assert hubspot.won_deals([owner, won], info("hubspot")) == {"555"}
    event = hubspot.from_hubspot_payload([won], info("hubspot"), {"555": "321"})[0]
    assert (event.type, event.actor.id) == ("deal.won", "cfixture:owner:321")
    unknown = hubspot.from_hubspot_payload([won], info("hubspot"), {})[0]
    assert unknown.type == "hubspot.deal_won_unassigned"
    # A custom pipeline's won stage counts only where the connection lists it.
    custom = {**won, "propertyValue": "1234567"}
    assert hubspot.won_deals([custom], info("hubspot")) == set()
    assert hubspot.won_deals([custom], info("hubspot", won_stages=["1234567"])) == {"555"}


SF_ORG = "012345678901234"


def test_salesforce_notifications() -> None:
    body = fixture_bytes("salesforce/outbound_message.contact_notifications.xml")
    events = salesforce.from_salesforce_payload(body, info("salesforce", org_id=SF_ORG), RECEIVED)
    assert [e.id for e in events] == ["04l1I000000fztEQAQ", "04l1I000000fzt9QAA"]
    assert [e.actor.id for e in events] == ["cfixture:contact:0031I0000081tbPQAQ",
                                            "cfixture:contact:0031I0000081tb0QAA"]  # fmt: skip
    assert events[1].actor.email == "drb24@cornell.edu"
    assert events[0].occurred_at == datetime(2017, 12, 11, 21, 49, 24, tzinfo=UTC)
    assert {e.type for e in events} == {"salesforce.contact_notified"}
    # An 18-character id of the same org is accepted; another org is not.
    salesforce.from_salesforce_payload(body, info("salesforce", org_id=SF_ORG + "AAA"), RECEIVED)
    with pytest.raises(BadSignature):
        salesforce.from_salesforce_payload(body, info("salesforce", org_id="00D000000000001"),
                                           RECEIVED)  # fmt: skip


def opportunity_message(org: str = SF_ORG, *, won: bool = True) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound">
<OrganizationId>{org}</OrganizationId><ActionId>04k1I000000bmsHQAQ</ActionId>
<Notification><Id>04l1I000000opp1QAA</Id>
<sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
<sf:Id>0061I000004ABCDQA4</sf:Id><sf:IsWon>{str(won).lower()}</sf:IsWon>
<sf:LastModifiedDate>2026-11-20T09:30:00.000Z</sf:LastModifiedDate>
<sf:OwnerId>0051I000000OWNRQAA</sf:OwnerId><sf:StageName>Closed Won</sf:StageName>
</sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>""".encode()


def test_salesforce_won_opportunity_is_deal_won_for_the_owner() -> None:
    events = salesforce.from_salesforce_payload(
        opportunity_message(), info("salesforce", org_id=SF_ORG), RECEIVED
    )
    event = _only(events)
    _check(event, "deal.won", "user:0051I000000OWNRQAA", "2026-11-20T09:30:00+00:00",
           "04l1I000000opp1QAA")  # fmt: skip


XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>&x;</OrganizationId>
</notifications></soapenv:Body></soapenv:Envelope>"""
BILLION = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><l>&c;</l>"""


@pytest.mark.parametrize("body", [XXE, BILLION, b"<a><b></a>", b"not xml", b""])
def test_salesforce_refuses_entity_tricks_and_bad_xml(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        salesforce.from_salesforce_payload(body, info("salesforce", org_id=SF_ORG), RECEIVED)


def test_standard_payloads() -> None:
    for name in ("full", "thin"):
        data = fixture_json(f"standard-webhooks/payload.contact_created.{name}.json")
        event = _only(standard.from_standard_payload(data, info("standard"), "msg_p5jXN8AQM9"))
        _check(event, "contact.created", "1f81eb52-5198-4599-803e-771906343485",
               "2022-11-03T20:26:10.344522+00:00", "msg_p5jXN8AQM9")  # fmt: skip
    odd = {"type": "Invoice Paid!", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": "u1"}}
    assert _only(standard.from_standard_payload(odd, info("standard"), "m")).type == (
        "standard.invoice_paid"
    )


def test_batches_keep_their_readable_items() -> None:
    """Salesforce gives up after a day and xAPI clients rarely resend: one unreadable item in a
    batch is named in ``rejected`` and the others are kept (the view stores them)."""
    body = fixture_bytes("salesforce/outbound_message.contact_notifications.xml")
    broken = body.replace(b"<Id>", b"<Unknown>", 1).replace(b"</Id>", b"</Unknown>", 1)
    events = salesforce.from_salesforce_payload(broken, info("salesforce", org_id=SF_ORG), RECEIVED)
    assert len(events) == 1
    assert events.rejected == [{"index": 0, "message": "a Notification needs Id and sObject"}]
    good = fixture_json("xapi/statement.attempted_with_result.json")
    statements = xapi.from_xapi_payload([good, {"actor": {}}], info("xapi"), RECEIVED)
    assert [e.id for e in statements] == [good["id"]]
    assert [r["index"] for r in statements.rejected] == [1]
    with pytest.raises(InvalidPayload, match="verb must be a JSON object"):
        xapi.from_xapi_payload([{"actor": {"mbox": "mailto:a@b.c"}}], info("xapi"), RECEIVED)
