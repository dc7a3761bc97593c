"""Open Badges 2.0 hosted documents, checked against the published 2.0 JSON-LD context.

"Valid against the context" here means: expanding with the official context (the fixture copy of
https://w3id.org/openbadges/v2) keeps every property (none is dropped as an unknown term), the
types are the OB vocabulary's, and the properties the 2.0 spec requires are there. The same check
passes on the spec's own examples and fails on a document with a made-up property, so it is a
real check."""

from __future__ import annotations

import io
from typing import Any

import png as pypng
import pytest
from pyld import jsonld
from pyld.documentloader.frozen import FrozenDocumentLoader

from tests.credentials.conftest import FIXTURES, fixture_json, issue, make_award

OB = "https://w3id.org/openbadges#"
LOADER = FrozenDocumentLoader({"https://w3id.org/openbadges/v2": FIXTURES / "v2" / "context.json"})
REQUIRED = {
    "Assertion": {"id", "type", "recipient", "badge", "verification", "issuedOn"},
    "BadgeClass": {"id", "type", "name", "description", "image", "criteria", "issuer"},
    "Issuer": {"id", "type", "name", "url"},
    "RevocationList": {"id", "type", "issuer", "revokedAssertions"},
}


def check_against_context(document: dict[str, Any]) -> None:
    """Raise AssertionError if the document drops a term or lacks a required property."""
    expanded = jsonld.expand(document, {"documentLoader": LOADER})
    assert len(expanded) == 1
    node = expanded[0]
    kind = document["type"]
    assert node["@type"] == [OB + kind]
    properties = {k for k in document if not k.startswith("@") and k not in ("id", "type")}
    assert len([k for k in node if not k.startswith("@")]) == len(properties), (
        "a property is not defined by the OB 2.0 context"
    )
    missing = REQUIRED[kind] - set(document)
    assert not missing, missing


@pytest.mark.parametrize(
    "name", ["assertion.json", "badgeclass.json", "issuer_profile.json", "revocation_list.json"]
)
def test_the_check_accepts_the_spec_examples(name: str) -> None:
    check_against_context(fixture_json(f"v2/{name}"))


def test_the_check_rejects_an_unknown_property() -> None:
    document = {**fixture_json("v2/assertion.json"), "sparkle": "yes"}
    with pytest.raises(AssertionError):
        check_against_context(document)


def _ob2_links(client: Any, tenant: Any, award: tuple[int, int]) -> dict[str, str]:
    body = issue(client, tenant, *award)
    return {k: v.removeprefix("http://localhost") for k, v in body["links"].items()}


def _get(client: Any, path: str) -> dict[str, Any]:
    response = client.get(path, headers={"Accept": "application/ld+json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/ld+json"
    body: dict[str, Any] = response.get_json(force=True)
    return body


def test_hosted_assertion_badge_class_and_issuer(client, tenant, award) -> None:
    links = _ob2_links(client, tenant, award)
    assertion = _get(client, links["ob2_assertion"])
    check_against_context(assertion)
    assert assertion["recipient"]["identity"].startswith("sha256$")
    assert assertion["verification"] == {"type": "hosted"}
    assert assertion["id"].endswith(links["ob2_assertion"])  # hosted at its own id
    badge = _get(client, assertion["badge"].removeprefix("http://localhost"))
    check_against_context(badge)
    assert badge["name"] == "First Steps"
    issuer = _get(client, badge["issuer"].removeprefix("http://localhost"))
    check_against_context(issuer)
    assert issuer["name"] == "Test School"
    revocations = _get(client, issuer["revocationList"].removeprefix("http://localhost"))
    check_against_context(revocations)
    assert revocations["revokedAssertions"] == []
    image = client.get(badge["image"].removeprefix("http://localhost"))
    assert image.mimetype == "image/png"
    assert pypng.Reader(bytes=image.data).read()[0] == 128


def test_content_negotiation(client, tenant, award) -> None:
    links = _ob2_links(client, tenant, award)
    html = client.get(links["ob2_assertion"], headers={"Accept": "text/html,*/*;q=0.8"})
    assert html.mimetype == "text/html"
    assert "Assertion" in html.get_data(as_text=True)
    assert html.headers["Vary"] == "Accept"
    plain = client.get(links["ob2_assertion"])  # no Accept: a client, so JSON
    assert plain.mimetype == "application/ld+json"
    as_json = client.get(links["ob2_assertion"], headers={"Accept": "application/json"})
    assert as_json.get_json(force=True)["type"] == "Assertion"


def test_revoked_assertion_and_revocation_list(client, tenant, award) -> None:
    links = _ob2_links(client, tenant, award)
    client.post(
        f"/api/v1/players/{award[0]}/badges/{award[1]}/revoke",
        headers=tenant.auth,
        json={"reason": "Honor code violation"},
    )
    assertion = _get(client, links["ob2_assertion"])
    assert assertion["revoked"] is True
    assert assertion["revocationReason"] == "Honor code violation"
    check_against_context(assertion)
    revocations = _get(client, f"/ob/v2/issuers/{tenant.id}/revocations")
    assert revocations["revokedAssertions"] == [
        {"id": assertion["id"], "revocationReason": "Honor code violation"}
    ]


def test_baked_ob2_png(client, tenant, award) -> None:
    links = _ob2_links(client, tenant, award)
    baked = client.get(links["ob2_png"])
    chunks = dict(pypng.Reader(bytes=baked.data).chunks())
    keyword, _, rest = chunks[b"iTXt"].partition(b"\0")
    assert keyword == b"openbadges"
    assert b'"type":"Assertion"' in rest
    # The verify page checks a 2.0 badge the hosted way: against the assertion at its id.
    response = client.post(
        "/ob/verify",
        data={"file": (io.BytesIO(baked.data), "badge.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert 'data-status="valid"' in response.get_data(as_text=True)


def test_ob2_hosted_verification(client, tenant, award, expiring_award) -> None:
    links = _ob2_links(client, tenant, award)
    assertion = _get(client, links["ob2_assertion"])
    result = client.post("/ob/verify", json=assertion).get_json()
    assert result["status"] == "valid" and result["format"] == "ob2-hosted"
    page = client.post("/ob/verify", data={"credential": assertion["id"]}).get_data(as_text=True)
    assert 'data-status="valid"' in page
    changed = {**assertion, "issuedOn": "2020-01-01T00:00:00Z"}
    assert client.post("/ob/verify", json=changed).get_json()["status"] == "tampered"
    foreign = {**assertion, "id": "https://elsewhere.example/assertions/1"}
    assert client.post("/ob/verify", json=foreign).get_json()["status"] == "unknown_issuer"
    missing = {**assertion, "id": "http://localhost/ob/v2/assertions/nope"}
    assert client.post("/ob/verify", json=missing).get_json()["status"] == "unknown_issuer"
    expiring = _get(client, _ob2_links(client, tenant, expiring_award)["ob2_assertion"])
    assert client.post("/ob/verify", json=expiring).get_json()["status"] == "expired"
    client.post(
        f"/api/v1/players/{award[0]}/badges/{award[1]}/revoke",
        headers=tenant.auth,
        json={"reason": "Honor code violation"},
    )
    result = client.post("/ob/verify", json=assertion).get_json()
    assert result["status"] == "revoked" and "Honor code violation" in result["message"]


def test_badge_class_of_a_badge_never_awarded_is_404(client, tenant, db) -> None:
    make_award(db, tenant)
    response = client.get(f"/ob/v2/badges/{tenant.id}/no-such-badge/0")
    assert response.status_code == 404
    assert "no-such-badge" in response.get_json()["message"]
