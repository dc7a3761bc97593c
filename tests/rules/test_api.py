"""The rules admin API on real PostgreSQL: versions, activation, YAML, errors, tenancy."""

from __future__ import annotations

from sqlalchemy import select

from questline.models import RuleAudit
from tests.conftest import TenantHandle, event
from tests.rules.helpers import EXAMPLES, post, xp_by_actor

LESSON_5 = {"xp": [{"id": "lesson", "on": "lesson.completed", "points": 5}]}


def put(client, tenant: TenantHandle, path: str, content_type: str | None = None, **kw):
    headers = {**tenant.auth, **({"Content-Type": content_type} if content_type else {})}
    return client.put(f"/api/v1/rules/{path}", headers=headers, **kw)


def test_tenant_without_rules_reads_the_defaults(client, tenant):
    body = client.get("/api/v1/rules/tenant", headers=tenant.auth).get_json()
    assert body["default"] is True and body["version"] is None
    assert body["document"]["xp"][0]["id"] == "session-started"
    assert client.get("/api/v1/rules", headers=tenant.auth).get_json() == {"rule_sets": []}


def test_put_json_stores_versions_and_activates_the_latest(client, tenant, db):
    first = put(client, tenant, "tenant", json=LESSON_5)
    assert first.status_code == 201 and first.get_json()["version"] == 1
    doubled = {"xp": [{"id": "lesson", "on": "lesson.completed", "points": 10}]}
    assert put(client, tenant, "tenant", json=doubled).get_json()["version"] == 2

    active = client.get("/api/v1/rules/tenant", headers=tenant.auth).get_json()
    assert active["version"] == 2 and active["document"] == doubled
    listed = client.get("/api/v1/rules/tenant/versions", headers=tenant.auth).get_json()
    assert [(v["version"], v["active"]) for v in listed["versions"]] == [(2, True), (1, False)]

    # Events now earn under version 2; rolling back to 1 changes later events only.
    post(client, tenant, event("a", actor="ann"))
    rolled = client.post("/api/v1/rules/tenant/versions/1/activate", headers=tenant.auth)
    assert rolled.status_code == 200
    post(client, tenant, event("b", actor="ann"))
    assert xp_by_actor(db, tenant) == {"ann": 15}

    with db.sessions() as session:
        actions = session.scalars(
            select(RuleAudit.action).where(RuleAudit.tenant_id == tenant.id).order_by(RuleAudit.id)
        ).all()
    assert actions == ["load+activate", "load+activate", "activate"]


def test_put_yaml_example(client, tenant):
    body = (EXAMPLES / "tenant.yaml").read_bytes()
    response = put(client, tenant, "tenant", "application/yaml", data=body)
    assert response.status_code == 201, response.get_json()
    stored = client.get("/api/v1/rules/tenant", headers=tenant.auth).get_json()["document"]
    assert stored["multipliers"][0]["from"] == "2026-12-07T00:00:00Z"
    assert [r["on"] for r in stored["xp"]][:2] == ["lesson.completed", "quiz.submitted"]


def test_invalid_document_is_a_422_listing_every_error(client, tenant):
    body = (EXAMPLES / "broken.yaml").read_bytes()
    response = put(client, tenant, "tenant", data=body)
    assert response.status_code == 422
    details = response.get_json()["details"]
    assert {"path": "xp[0].id", "message": "must be 1-100 lowercase letters, digits or . _ -"} in (
        details
    )
    assert len(details) == 7
    assert (
        client.get("/api/v1/rules/tenant/versions", headers=tenant.auth).get_json()["versions"]
        == []
    )


def test_bad_bodies_are_4xx(client, tenant):
    assert put(client, tenant, "tenant", data=b"").status_code == 400
    assert put(client, tenant, "tenant", data=b"\xff\xfe").status_code == 400
    assert put(client, tenant, "tenant", data=b"{not json").status_code == 422
    assert put(client, tenant, "tenant", data=b"xp: [unclosed").status_code == 422
    assert put(client, tenant, "tenant", data=b"- a list").status_code == 422
    missing = client.post("/api/v1/rules/tenant/versions/9/activate", headers=tenant.auth)
    assert missing.status_code == 404


def test_course_rule_sets(client, tenant, db):
    course_doc = {"xp": [{"id": "lesson", "on": "lesson.completed", "points": 2}]}
    assert put(client, tenant, "tenant", json=LESSON_5).status_code == 201
    assert put(client, tenant, "courses/math-101", json=course_doc).status_code == 201
    with_levels = dict(course_doc, levels={"table": [0, 10]})
    refused = put(client, tenant, "courses/math-101", json=with_levels)
    assert refused.status_code == 422
    assert refused.get_json()["details"] == [
        {"path": "levels", "message": "only the tenant rule set defines levels"}
    ]
    assert client.get("/api/v1/rules/courses/art", headers=tenant.auth).status_code == 404
    sets = client.get("/api/v1/rules", headers=tenant.auth).get_json()["rule_sets"]
    assert [(s["course"], s["version"]) for s in sets] == [(None, 1), ("math-101", 1)]

    post(
        client,
        tenant,
        event("m", actor="ann", course="math-101"),
        event("h", actor="bob", course="history"),
    )
    assert xp_by_actor(db, tenant) == {"ann": 2, "bob": 5}


def test_check_endpoint(client, tenant):
    ok = client.post("/api/v1/rules/check", json=LESSON_5, headers=tenant.auth)
    assert ok.get_json() == {"ok": True, "xp_rules": 1, "multipliers": 0, "badges": 0}
    bad = client.post("/api/v1/rules/check?scope=course", json={"levels": {}}, headers=tenant.auth)
    assert bad.status_code == 422
    assert (
        client.post("/api/v1/rules/check?scope=x", json={}, headers=tenant.auth).status_code == 400
    )


def test_tenants_never_see_each_others_rules(client, tenant, other_tenant):
    assert put(client, tenant, "tenant", json=LESSON_5).status_code == 201
    theirs = client.get("/api/v1/rules/tenant", headers=other_tenant.auth).get_json()
    assert theirs["default"] is True
    assert (
        client.get("/api/v1/rules/tenant/versions", headers=other_tenant.auth).get_json()[
            "versions"
        ]
        == []
    )
    # Activating "version 1" from the other tenant finds nothing to activate.
    other = client.post("/api/v1/rules/tenant/versions/1/activate", headers=other_tenant.auth)
    assert other.status_code == 404


def test_a_key_is_required(client):
    assert client.get("/api/v1/rules").status_code == 401
    assert client.put("/api/v1/rules/tenant", json=LESSON_5).status_code == 401
