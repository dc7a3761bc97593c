"""How long Open Badges signing and verification take, in process (no database, no HTTP).

Run: ``python bench/openbadges.py [N]``. RDF canonicalization (pyld, pure Python) dominates a
Data Integrity proof; a VC-JWT is just a signature. The figures matter for the public verify
page, where each pasted JSON credential costs one canonicalization of the credential and one of
the proof options.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from credentials.documents import BadgeFacts, Recipient, open_badge_credential
from credentials.keys import public_raw
from credentials.proofs import add_data_integrity_proof, sign_jwt, verify_data_integrity, verify_jwt


def _facts() -> BadgeFacts:
    base = "https://questline.example/ob"
    return BadgeFacts(
        credential_url=f"{base}/v3/credentials/6f1b7d1e-0000-4000-8000-000000000001",
        issuer_url=f"{base}/v3/issuers/1",
        issuer_name="Bench School",
        issuer_homepage="https://questline.example/",
        achievement_url=f"{base}/v2/badges/1/first-steps/0",
        badge_name="First Steps",
        description="Completed the first three lessons.",
        criteria="Awarded when a learner completes three lessons.",
        image_url=f"{base}/v2/badges/1/first-steps/0/image.png",
        explanation="Completed 3 lessons in course-1 (rule first-steps)",
        awarded_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
        expires_at=None,
        recipient=Recipient("ada@example.edu", "emailAddress", "0123456789abcdef"),
        status_list_url=f"{base}/v3/issuers/1/status/1",
        status_index=7,
    )


def _time(label: str, runs: int, action: Callable[[], object]) -> None:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    print(f"{label:<34} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms")


def main(runs: int) -> None:
    key = Ed25519PrivateKey.generate()
    method = "https://questline.example/ob/v3/issuers/1#key"
    unsigned = open_badge_credential(_facts())
    now = datetime.now(UTC)
    signed = add_data_integrity_proof(unsigned, key, method, now)
    token = sign_jwt(unsigned, key, method)
    public = public_raw(key.public_key())

    def resolve(_method: str) -> bytes:
        return public

    print(f"{runs} runs each, one process")
    _time(
        "sign eddsa-rdfc-2022 (Data Integrity)",
        runs,
        lambda: add_data_integrity_proof(unsigned, key, method, now),
    )
    _time("verify eddsa-rdfc-2022", runs, lambda: verify_data_integrity(signed, resolve))
    _time("sign VC-JWT (EdDSA)", runs, lambda: sign_jwt(unsigned, key, method))
    _time("verify VC-JWT", runs, lambda: verify_jwt(token, resolve))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
