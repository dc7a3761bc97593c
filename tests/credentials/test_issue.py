"""Issue -> verify round trips through the HTTP API, on the real database.

Covers: both proof formats, idempotent issuing, tenant isolation, tampering at every field,
wrong key, unknown issuer, malformed input (never a 500), expiry, revocation through the
published BitstringStatusList, downloads and the baked PNG."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import png as pypng  # pypng: an independent PNG reader
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from credentials import service
from credentials.documents import bit_is_set
from credentials.proofs import ProofError, add_data_integrity_proof, sign_jwt, verify_data_integrity
from credentials.verify import verify
from tests.conftest import new_tenant
from tests.credentials.conftest import AWARDED_AT, issue, make_award, verify_json


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str) and value.endswith("Z") and value[:4].isdigit():
        return value.replace(value[:4], str(int(value[:4]) - 1), 1)
    if isinstance(value, str) and "://" in value:
        return value + "x"
    if isinstance(value, str) and value.startswith("sha256$"):
        return value[:-1] + ("0" if value[-1] != "0" else "1")
    return f"{value}!"


def _set(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(document)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def test_round_trip_both_formats(client, tenant, award) -> None:
    body = issue(client, tenant, *award)
    assert verify_json(client, body["credential"])["status"] == "valid"
    assert verify_json(client, {"jwt": body["jwt"]})["status"] == "valid"
    document = body["credential"]
    assert document["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    subject = document["credentialSubject"]
    assert "ada@example.edu" not in json.dumps(document)
    assert subject["identifier"][0]["identityType"] == "emailAddress"
    assert document["evidence"][0]["narrative"].startswith("Completed 3 lessons")
    assert document["validFrom"] == "2026-11-20T10:00:00Z"
    assert document["issuer"]["name"] == "Test School"


def test_issuing_is_idempotent_and_tenant_scoped(client, db, tenant, award) -> None:
    first = issue(client, tenant, *award)
    assert issue(client, tenant, *award)["id"] == first["id"]
    other = new_tenant(db, "Elsewhere")
    response = client.post(
        f"/api/v1/players/{award[0]}/badges/{award[1]}/credential", headers=other.auth
    )
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    wrong_player = client.post(
        f"/api/v1/players/{award[0] + 999}/badges/{award[1]}/credential", headers=tenant.auth
    )
    assert wrong_player.status_code == 404
    assert client.post(f"/api/v1/players/{award[0]}/badges/{award[1]}/credential").status_code == (
        401
    )


def test_tampering_at_every_field_is_detected(client, tenant, award) -> None:
    document = issue(client, tenant, *award)["credential"]
    checked = 0
    for path in _leaves(document):
        if path[0] == "proof" and path[-1] in ("type", "cryptosuite", "proofPurpose"):
            continue  # an unsupported proof suite is reported as malformed, checked below
        node: Any = document
        for step in path:
            node = node[step]
        result = verify_json(client, _set(document, path, _changed(node)))
        assert result["status"] in ("tampered", "unknown_issuer", "malformed"), (path, result)
        assert not result["valid"]
        checked += 1
    assert checked >= 25
    for field in ("type", "cryptosuite", "proofPurpose"):
        result = verify_json(client, _set(document, ("proof", field), "other"))
        assert result["status"] == "malformed", field
    added = {**document, "description": "an extra claim the issuer never made"}
    assert verify_json(client, added)["status"] == "tampered"
    removed = {k: v for k, v in document.items() if k != "evidence"}
    assert verify_json(client, removed)["status"] == "tampered"


def test_tampered_jwt_and_wrong_key(client, tenant, award) -> None:
    body = issue(client, tenant, *award)
    head, payload, signature = body["jwt"].split(".")
    other = issue(client, tenant, *make_award_for(client, tenant))
    _, other_payload, _ = other["jwt"].split(".")
    result = verify_json(client, {"jwt": f"{head}.{other_payload}.{signature}"})
    assert result["status"] == "tampered"
    # Signed by a key that is not the tenant's, but naming the tenant's key: tampered.
    stranger = Ed25519PrivateKey.generate()
    unsigned = {k: v for k, v in body["credential"].items() if k != "proof"}
    method = body["credential"]["proof"]["verificationMethod"]
    forged = add_data_integrity_proof(unsigned, stranger, method, datetime.now(UTC))
    assert verify_json(client, forged)["status"] == "tampered"
    assert verify_json(client, {"jwt": sign_jwt(unsigned, stranger, method)})["status"] == (
        "tampered"
    )
    # alg downgrade: 'none' is refused whatever the rest says.
    none_head = "eyJhbGciOiJub25lIn0"
    assert verify_json(client, {"jwt": f"{none_head}.{payload}."})["status"] == "malformed"


_award_counter = iter(range(1000))


def make_award_for(client: Any, tenant: Any) -> tuple[int, int]:
    app_db = client.application.extensions["questline"].db
    return make_award(app_db, tenant, badge_id=f"other-{next(_award_counter)}", name="Other")


def test_unknown_issuer(client, tenant, award) -> None:
    unsigned = {k: v for k, v in issue(client, tenant, *award)["credential"].items()}
    unsigned.pop("proof")
    stranger = Ed25519PrivateKey.generate()
    for method in (
        "https://issuer.example.org/keys#z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi",
        f"http://localhost/ob/v3/issuers/{tenant.id + 1000}#z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jH",
    ):
        forged = add_data_integrity_proof(unsigned, stranger, method, datetime.now(UTC))
        result = verify_json(client, forged)
        assert result["status"] == "unknown_issuer", result


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"jwt": "not.a.jwt"},
        {"jwt": "a.b"},
        {"@context": "https://unknown.example/context", "type": "VerifiableCredential"},
        {"@context": ["https://www.w3.org/ns/credentials/v2"], "proof": {"type": "Nope"}},
        {"@context": [{"@version": 2}], "proof": "x"},
        {"@context": [], "proof": {"type": "DataIntegrityProof", "proofValue": "not-base58!"}},
    ],
)
def test_malformed_json_input_is_a_result_not_a_500(client, payload) -> None:
    response = client.post("/ob/verify", json=payload)
    assert response.status_code == 200
    body = response.get_json()
    assert body["valid"] is False
    assert body["status"] in ("malformed", "unknown_issuer")
    assert body["message"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"[1, 2]", "application/json"),
        (b"{not json", "application/json"),
        ("\u00ff".encode("latin-1"), "application/json"),
        (b"[" * 50_000, "application/json"),
        (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "application/json"),
        (b'"just a string"', "application/json"),
    ],
)
def test_bad_json_bodies_are_4xx(client, data, content_type) -> None:
    response = client.post("/ob/verify", data=data, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert response.get_json()["message"]


@pytest.mark.parametrize("text", ["", "hello", "{", "[]", "a.b.c", "{" * 5000 + "}" * 5000])
def test_verify_page_form_never_500(client, text) -> None:
    response = client.post("/ob/verify", data={"credential": text})
    assert response.status_code in (200, 422)
    assert 'data-status="' in response.get_data(as_text=True)


def test_expiry(client, tenant, expiring_award) -> None:
    body = issue(client, tenant, *expiring_award)
    assert body["credential"]["validUntil"] == "2026-11-21T10:00:00Z"
    # The page runs on the wall clock, which is past validUntil: expired, in both formats.
    assert verify_json(client, body["credential"])["status"] == "expired"
    assert verify_json(client, {"jwt": body["jwt"]})["status"] == "expired"
    # Before expiry (and before validFrom) with a fixed clock:
    with client.application.extensions["questline"].db.session() as session:
        keys = service.key_resolver(session, "http://localhost")
        status = service.status_lookup(session, "http://localhost")
        at = {
            "valid": AWARDED_AT + timedelta(hours=1),
            "not_yet_valid": AWARDED_AT - timedelta(hours=1),
            "expired": AWARDED_AT + timedelta(days=2),
        }
        for expected, now in at.items():
            for credential in (body["credential"], body["jwt"]):
                result = verify(credential, resolve_key=keys, status_lookup=status, now=now)
                assert result.status == expected, (expected, result.message)


def test_revocation_flips_the_published_status_list(client, tenant, award) -> None:
    body = issue(client, tenant, *award)
    entry = body["credential"]["credentialStatus"]
    list_path = entry["statusListCredential"].removeprefix("http://localhost")
    index = int(entry["statusListIndex"])
    before = client.get(list_path).get_json(force=True)
    assert not bit_is_set(before["credentialSubject"]["encodedList"], index)
    # A status list is not a badge: the verify page says so rather than calling it valid.
    assert verify_json(client, before)["status"] == "malformed"
    revoked = client.post(
        f"/api/v1/players/{award[0]}/badges/{award[1]}/revoke",
        headers=tenant.auth,
        json={"reason": "issued in error"},
    )
    assert revoked.status_code == 200, revoked.get_json()
    after = client.get(list_path).get_json(force=True)
    assert after["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert bit_is_set(after["credentialSubject"]["encodedList"], index)
    assert verify_json(client, body["credential"])["status"] == "revoked"
    assert verify_json(client, {"jwt": body["jwt"]})["status"] == "revoked"
    # The list itself is signed by the tenant: our proof check accepts it, tampering does not.
    with client.application.extensions["questline"].db.session() as session:
        keys = service.key_resolver(session, "http://localhost")
        assert (
            verify_data_integrity(after, keys) == body["credential"]["proof"]["verificationMethod"]
        )
        flipped = copy.deepcopy(after)
        flipped["credentialSubject"]["encodedList"] = before["credentialSubject"]["encodedList"]
        with pytest.raises(ProofError):
            verify_data_integrity(flipped, keys)


def test_status_list_of_unknown_issuer_is_404(client) -> None:
    assert client.get("/ob/v3/issuers/999999/status/1").status_code == 404
    assert client.get("/ob/v3/issuers/999999").status_code == 404
    assert client.get("/ob/v3/credentials/nope").status_code == 404


def test_downloads_and_baked_png(client, tenant, award) -> None:
    body = issue(client, tenant, *award)
    links = {k: v.removeprefix("http://localhost") for k, v in body["links"].items()}
    download = client.get(links["json"])
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.get_json(force=True) == body["credential"]
    assert client.get(links["jwt"]).get_data(as_text=True) == body["jwt"]
    baked = client.get(links["png"])
    assert baked.mimetype == "image/png"
    reader = pypng.Reader(bytes=baked.data)
    chunks = {kind: data for kind, data in reader.chunks()}
    keyword, _, rest = chunks[b"iTXt"].partition(b"\0")
    assert keyword == b"openbadgecredential"
    assert json.loads(rest[4:].decode()) == body["credential"]  # flags, method, "" , ""
    width, height, _rows, _info = pypng.Reader(bytes=baked.data).read()
    assert (width, height) == (128, 128)
    # The verify page reads the PNG back.
    upload = client.post(
        "/ob/verify",
        data={"file": (io.BytesIO(baked.data), "badge.png")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 200
    assert 'data-status="valid"' in upload.get_data(as_text=True)
    bad = client.post(
        "/ob/verify",
        data={"file": (io.BytesIO(b"GIF89a"), "badge.png")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422
    page = client.get(links["verify"])
    assert 'data-status="valid"' in page.get_data(as_text=True)


def test_learner_downloads_with_the_widget_token(client, db, tenant, award) -> None:
    """The badge shelf links here with the embed token it was opened with."""
    from widgets.signing import EmbedGrant, sign

    secret = client.application.config["SECRET_KEY"]
    player_id, award_id = award
    token = sign(secret, EmbedGrant(tenant.id, player_id), ttl_seconds=600)
    as_json = client.get(f"/ob/me/badges/{award_id}/credential.json?token={token}")
    assert as_json.status_code == 200
    assert as_json.headers["Content-Disposition"].startswith("attachment")
    assert verify_json(client, as_json.get_json(force=True))["status"] == "valid"
    as_jwt = client.get(f"/ob/me/badges/{award_id}/credential.jwt?token={token}")
    assert verify_json(client, {"jwt": as_jwt.get_data(as_text=True)})["status"] == "valid"
    as_png = client.get(f"/ob/me/badges/{award_id}/credential.png?token={token}")
    assert as_png.mimetype == "image/png"
    # Someone else's token, no token, a forged token: never this award.
    other_player, _ = make_award(db, tenant, email="bo@example.edu")
    other = sign(secret, EmbedGrant(tenant.id, other_player), ttl_seconds=600)
    assert client.get(f"/ob/me/badges/{award_id}/credential?token={other}").status_code == 404
    assert client.get(f"/ob/me/badges/{award_id}/credential").status_code == 403
    assert client.get(f"/ob/me/badges/{award_id}/credential?token={token}x").status_code == 403


def test_verify_page_checks_the_recipient_and_shows_each_outcome(
    client, tenant, award, expiring_award
) -> None:
    body = issue(client, tenant, *award)
    document = json.dumps(body["credential"])
    matching = client.post("/ob/verify?recipient=Ada@Example.edu", json=body["credential"])
    assert matching.get_json()["details"]["recipient_matches"] is True
    other = client.post("/ob/verify?recipient=eve@example.edu", json={"jwt": body["jwt"]})
    assert other.get_json()["details"]["recipient_matches"] is False
    assert other.get_json()["status"] == "valid"  # the badge is fine; it just is not Eve's
    page = client.post(
        "/ob/verify", data={"credential": document, "recipient": "eve@example.edu"}
    ).get_data(as_text=True)
    assert 'data-status="valid"' in page and "<dd>NO</dd>" in page
    expired = issue(client, tenant, *expiring_award)["credential"]
    page = client.post("/ob/verify", data={"credential": json.dumps(expired)})
    assert 'data-status="expired"' in page.get_data(as_text=True)
    tampered = document.replace("First Steps", "Last Steps")
    page = client.post("/ob/verify", data={"credential": tampered})
    assert 'data-status="tampered"' in page.get_data(as_text=True)
    client.post(
        f"/api/v1/players/{award[0]}/badges/{award[1]}/revoke",
        headers=tenant.auth,
        json={"reason": "issued in error"},
    )
    page = client.post("/ob/verify", data={"credential": document})
    assert 'data-status="revoked"' in page.get_data(as_text=True)


def test_the_badge_shelf_links_the_learners_downloads(client, tenant, award) -> None:
    """Issue 9: learners download their credential (JSON and baked PNG) from the badge shelf."""
    import html
    import re

    from widgets.signing import EmbedGrant, sign

    player_id, award_id = award
    token = sign(
        client.application.config["SECRET_KEY"], EmbedGrant(tenant.id, player_id), ttl_seconds=600
    )
    shelf = client.get(f"/widgets/badges?token={token}")
    assert shelf.status_code == 200
    links = [
        html.unescape(href)
        for href in re.findall(r'href="([^"]*/ob/me/badges/[^"]+)"', shelf.get_data(as_text=True))
    ]
    assert [link.split("?")[0] for link in links] == [
        f"/ob/me/badges/{award_id}/credential.json",
        f"/ob/me/badges/{award_id}/credential.png",
    ]
    as_json = client.get(links[0])
    assert verify_json(client, as_json.get_json(force=True))["status"] == "valid"
    assert client.get(links[1]).mimetype == "image/png"
