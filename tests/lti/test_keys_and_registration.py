"""Tool keys (encrypted, rotated, published), manual registration and the config page.

The CLI runs on the embedded default (SQLite), which also proves migration 0004 works there;
the rest runs on PostgreSQL in a rolled-back transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from lti.dynamic_registration import tenant_of_invitation
from lti.keys import KEY_GRACE, KeyUnavailable, SigningKeyCache, generate_key, published_jwks
from lti.models import LtiDeployment, LtiRegistration, LtiToolKey
from lti.registrations import InvalidRegistration, register_platform
from questline import create_app
from questline.cli import main
from questline.db import Database
from questline.settings import load_settings
from tests.conftest import TenantHandle


def test_private_keys_are_stored_encrypted_and_decrypt_with_the_secret(db: Database) -> None:
    now = datetime.now(UTC)
    with db.session() as session:
        key = generate_key(session, "secret-one", now)
        assert "PRIVATE KEY" not in key.private_key_encrypted
        signing = SigningKeyCache("secret-one").current(session)
        assert signing.kid == key.kid
        token = jwt.encode({"x": 1}, signing.private_pem, algorithm="RS256")
        public = jwt.PyJWK(key.public_jwk).key
        assert jwt.decode(token, public, algorithms=["RS256"]) == {"x": 1}
        with pytest.raises(KeyUnavailable, match="QUESTLINE_SECRET_KEY"):
            SigningKeyCache("another-secret").current(session)


def test_rotation_keeps_the_old_key_published_until_its_grace_ends(db: Database) -> None:
    now = datetime.now(UTC)
    with db.session() as session:
        before = {k["kid"] for k in published_jwks(session, now)["keys"]}
        old = generate_key(session, "s", now)
        new = generate_key(session, "s", now + timedelta(seconds=1))
        published = {k["kid"] for k in published_jwks(session, now)["keys"]} - before
        assert published == {old.kid, new.kid}
        assert SigningKeyCache("s").current(session).kid == new.kid
        later = now + KEY_GRACE + timedelta(minutes=1)
        assert old.kid not in {k["kid"] for k in published_jwks(session, later)["keys"]}
        assert new.kid in {k["kid"] for k in published_jwks(session, later)["keys"]}
        jwk = next(k for k in published_jwks(session, now)["keys"] if k["kid"] == new.kid)
        assert set(jwk) >= {"kty", "n", "e", "kid", "alg", "use"}
        assert "d" not in jwk and jwk["alg"] == "RS256"


def test_jwks_endpoint_publishes_the_keys(db: Database, client: FlaskClient) -> None:
    with db.session() as session:
        key = generate_key(session, "test-secret", datetime.now(UTC))
    response = client.get("/lti/jwks")
    assert response.status_code == 200
    assert key.kid in {k["kid"] for k in response.get_json()["keys"]}


def test_register_platform_validates_and_is_idempotent(
    db: Database, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    args = dict(
        issuer="https://lms.example.edu",
        client_id="abc",
        deployment_ids=["d1"],
        auth_login_url="https://lms.example.edu/auth",
        auth_token_url="https://lms.example.edu/token",
        key_set_url="https://lms.example.edu/jwks",
    )
    with db.session() as session:
        first = register_platform(session, tenant_id=tenant.id, **args)
        again = register_platform(
            session, tenant_id=tenant.id, **{**args, "deployment_ids": ["d1", "d2"]}
        )
        assert again.id == first.id
        deployments = session.scalars(
            select(LtiDeployment.deployment_id).where(LtiDeployment.registration_id == first.id)
        ).all()
        assert sorted(deployments) == ["d1", "d2"]
        with pytest.raises(InvalidRegistration, match="another tenant"):
            register_platform(session, tenant_id=other_tenant.id, **args)
        with pytest.raises(InvalidRegistration, match="key set URL"):
            register_platform(session, tenant_id=tenant.id, **{**args, "key_set_url": "ftp://x"})


def test_config_page_lists_questline_urls(client: FlaskClient) -> None:
    page = client.get("/lti/config", base_url="https://questline.example.edu").get_data(
        as_text=True
    )
    for path in ("/lti/login", "/lti/launch", "/lti/jwks"):
        assert f"https://questline.example.edu{path}" in page
    assert "questline lti register" in page


def test_cli_rotates_keys_and_registers_on_sqlite(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'lti.db'}"
    monkeypatch.setenv("QUESTLINE_DATABASE_URL", url)
    monkeypatch.delenv("QUESTLINE_REDIS_URL", raising=False)
    monkeypatch.setenv("QUESTLINE_SECRET_KEY", "cli-secret")
    monkeypatch.setenv("QUESTLINE_REDIS_PREFIX", f"lti-{tmp_path.name}")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("db", "upgrade")
    run("tenants", "create", "Uni")
    run("lti", "keys", "rotate")
    run("lti", "keys", "rotate")
    out = run(
        "lti",
        "register",
        "--tenant",
        "Uni",
        "--issuer",
        "https://canvas.example.edu",
        "--client-id",
        "1000",
        "--deployment-id",
        "dep-1",
        "--deployment-id",
        "dep-2",
        "--auth-login-url",
        "https://canvas.example.edu/api/lti/authorize_redirect",
        "--auth-token-url",
        "https://canvas.example.edu/login/oauth2/token",
        "--key-set-url",
        "https://canvas.example.edu/api/lti/security/jwks",
    )
    assert "registration 1" in out
    bad = runner.invoke(
        main,
        [
            "lti",
            "register",
            "--tenant",
            "Nope",
            "--issuer",
            "https://x",
            "--client-id",
            "1",
            "--deployment-id",
            "d",
            "--auth-login-url",
            "https://x/a",
            "--auth-token-url",
            "https://x/t",
            "--key-set-url",
            "https://x/k",
        ],
    )
    assert bad.exit_code != 0 and "no tenant" in bad.output

    invite = run("lti", "registration-url", "--tenant", "Uni", "--base-url", "https://q.example/")
    assert invite.startswith("https://q.example/lti/register?tenant=")
    token = invite.split("tenant=", 1)[1].split()[0]
    assert tenant_of_invitation("cli-secret", token) == 1
    no_base = runner.invoke(main, ["lti", "registration-url", "--tenant", "Uni"])
    assert no_base.exit_code != 0 and "--base-url" in no_base.output
    run("lti", "deployments", "add", "--registration", "1", "--deployment-id", "dep-3")
    missing = runner.invoke(
        main, ["lti", "deployments", "add", "--registration", "9", "--deployment-id", "x"]
    )
    assert missing.exit_code != 0 and "no registration 9" in missing.output

    database = Database(url)
    with database.sessions() as session:
        allowed = session.scalars(select(LtiDeployment.deployment_id)).all()
        assert sorted(allowed) == ["dep-1", "dep-2", "dep-3"]
        keys = session.scalars(select(LtiToolKey).order_by(LtiToolKey.id)).all()
        assert len(keys) == 2 and keys[0].retired_at is not None and keys[1].retired_at is None
        registration = session.scalar(select(LtiRegistration))
        assert registration is not None and registration.client_id == "1000"
    app = create_app(load_settings())
    body = app.test_client().get("/lti/jwks").get_json()
    assert {k["kid"] for k in body["keys"]} == {k.kid for k in keys}
    database.dispose()
