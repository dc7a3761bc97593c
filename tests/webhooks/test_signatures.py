"""Every published signature vector verifies; its negative cases and tampering fail."""

from __future__ import annotations

import pytest

from tests.webhooks.helpers import fixture_bytes, fixture_json
from webhooks.errors import BadSignature
from webhooks.signatures import (
    hubspot_v1,
    hubspot_v2,
    hubspot_v3,
    standard_sign,
    token_matches,
    verify_hubspot,
    verify_standard,
)

HUBSPOT = fixture_json("hubspot/signature_test_vectors.json")["vectors"]
STANDARD = fixture_json("standard-webhooks/signature_test_vectors.json")


def _expected(vector: dict) -> str:
    if "expected_signature" in vector:
        return vector["expected_signature"]
    header = vector["expected_header"]
    return header.get("X-HubSpot-Signature-v3") or header["X-HubSpot-Signature"]


@pytest.mark.parametrize("vector", HUBSPOT, ids=[v["name"] for v in HUBSPOT])
def test_hubspot_vectors_compute(vector: dict) -> None:
    secret, body = vector["client_secret"], vector["request_body"].encode()
    if vector["version"] == "v1":
        got = hubspot_v1(secret, body)
    elif vector["version"] == "v2":
        got = hubspot_v2(secret, vector["http_method"], vector["uri"], body)
    else:
        got = hubspot_v3(secret, vector["http_method"], vector["uri"], body, vector["timestamp"])
    assert got == _expected(vector)


def test_v1_docs_vector_matches_the_fixture_body_bytes() -> None:
    body = fixture_bytes("hubspot/webhook_contact_creation.v1_signature_doc_body.json")
    assert body == HUBSPOT[0]["request_body"].encode()
    headers = {k.lower(): v for k, v in HUBSPOT[0]["expected_header"].items()}
    verify_hubspot([HUBSPOT[0]["client_secret"]], method="POST", url="https://x/y", body=body,
                   headers=headers, now=0)  # fmt: skip
    with pytest.raises(BadSignature):
        verify_hubspot(["another-secret"], method="POST", url="https://x/y", body=body,
                       headers=headers, now=0)  # fmt: skip
    with pytest.raises(BadSignature):
        verify_hubspot([HUBSPOT[0]["client_secret"]], method="POST", url="https://x/y",
                       body=body + b" ", headers=headers, now=0)  # fmt: skip


def _v3(vector: dict) -> dict:
    return {k.lower(): v for k, v in vector["expected_header"].items()}


def test_hubspot_v3_vector_verifies_inside_its_window_only() -> None:
    vector = HUBSPOT[4]
    args = {"method": "POST", "url": vector["uri"], "body": vector["request_body"].encode()}
    secret = [vector["client_secret"]]
    verify_hubspot(secret, headers=_v3(vector), now=15000.0 + 299, **args)
    with pytest.raises(BadSignature, match="5 minutes"):
        verify_hubspot(secret, headers=_v3(vector), now=15000.0 + 301, **args)  # replayed late
    with pytest.raises(BadSignature, match="does not match"):
        verify_hubspot(secret, headers=_v3(vector), now=15000.0,
                       **{**args, "body": args["body"] + b"x"})  # fmt: skip
    with pytest.raises(BadSignature, match="does not match"):
        verify_hubspot(secret, headers=_v3(vector), now=15000.0,
                       **{**args, "url": vector["uri"] + "?x=1"})  # fmt: skip
    tampered = {**_v3(vector), "x-hubspot-request-timestamp": "15000001"}
    with pytest.raises(BadSignature, match="does not match"):
        verify_hubspot(secret, headers=tampered, now=15000.0, **args)


def test_hubspot_v3_uri_decodes_the_listed_escapes() -> None:
    url = "https://h.example/webhooks/c1?a=b%3Ac%40d"
    body, stamp, secret = b"[]", "1700000000000", "s"
    signed = hubspot_v3(secret, "POST", "https://h.example/webhooks/c1?a=b:c@d", body, stamp)
    headers = {"x-hubspot-signature-v3": signed, "x-hubspot-request-timestamp": stamp}
    verify_hubspot([secret], method="POST", url=url, body=body, headers=headers, now=1.7e9)


@pytest.mark.parametrize("vector", STANDARD["vectors"], ids=lambda v: v["name"])
def test_standard_vectors_sign_and_verify(vector: dict) -> None:
    headers, body = vector["headers"], vector["raw_body"].encode()
    signature = standard_sign(vector["secret"], headers["webhook-id"],
                              headers["webhook-timestamp"], body)  # fmt: skip
    assert signature == vector["expected_webhook_signature"]
    full = {**headers, "webhook-signature": signature}
    now = float(headers["webhook-timestamp"])
    assert (
        verify_standard([vector["secret"]], headers=full, body=body, now=now)
        == (headers["webhook-id"])
    )
    # Several signatures in one header: valid if any one matches.
    several = {**full, "webhook-signature": f"v1,Zm9v {signature} v1a,YmFy"}
    verify_standard([vector["secret"]], headers=several, body=body, now=now)
    with pytest.raises(BadSignature):
        verify_standard([vector["secret"]], headers=full, body=body + b" ", now=now)
    with pytest.raises(BadSignature):
        verify_standard([vector["secret"]], headers=full, body=body, now=now + 301)
    with pytest.raises(BadSignature):
        verify_standard([vector["secret"]], headers=full, body=body, now=now - 301)


NEGATIVE = [
    "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "
    "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    "v1,dawfeoifkpqwoekfpqoekf",
    "v1,",
    "",
]


@pytest.mark.parametrize("signature", NEGATIVE)
def test_standard_negative_cases(signature: str) -> None:
    vector = STANDARD["vectors"][0]
    headers = {**vector["headers"], "webhook-signature": signature}
    with pytest.raises(BadSignature):
        verify_standard([vector["secret"]], headers=headers, body=vector["raw_body"].encode(),
                        now=float(vector["headers"]["webhook-timestamp"]))  # fmt: skip


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_missing_header_rejected(missing: str) -> None:
    vector = STANDARD["vectors"][0]
    headers = {**vector["headers"], "webhook-signature": vector["expected_webhook_signature"]}
    del headers[missing]
    with pytest.raises(BadSignature):
        verify_standard([vector["secret"]], headers=headers, body=vector["raw_body"].encode(),
                        now=float(vector["headers"]["webhook-timestamp"]))  # fmt: skip


def test_standard_timestamp_must_be_a_number() -> None:
    vector = STANDARD["vectors"][0]
    headers = {**vector["headers"], "webhook-timestamp": "hello",
               "webhook-signature": vector["expected_webhook_signature"]}  # fmt: skip
    with pytest.raises(BadSignature):
        verify_standard([vector["secret"]], headers=headers, body=b"{}", now=1614265330)


def test_rotated_secret_list_accepts_either() -> None:
    vector = STANDARD["vectors"][0]
    headers = {**vector["headers"], "webhook-signature": vector["expected_webhook_signature"]}
    other = "whsec_" + "QUJD" * 8
    verify_standard([other, vector["secret"]], headers=headers, body=vector["raw_body"].encode(),
                    now=float(vector["headers"]["webhook-timestamp"]))  # fmt: skip
    assert token_matches(["a", "b"], "b") and not token_matches(["a", "b"], "c")
