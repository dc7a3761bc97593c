"""``questline connections``: create prints URL and secret; rotate keeps an overlap."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from questline.cli import main
from questline.db import Database
from webhooks.connections import load_connection
from webhooks.models import WebhookConnection, WebhookSecret


@pytest.fixture
def cli_env(committed_db: Database, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI against the test PostgreSQL, in a tenant of its own, deleted afterwards."""
    from tests.conftest import new_tenant

    monkeypatch.setenv("QUESTLINE_DATABASE_URL", pg_url)
    monkeypatch.setenv("QUESTLINE_PUBLIC_URL", "https://questline.example.org")
    tenant = new_tenant(committed_db)
    yield str(tenant.id)
    from questline.models import Tenant

    with committed_db.session() as session:
        session.delete(session.get(Tenant, tenant.id))


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_create_rotate_list_disable(cli_env: str, committed_db: Database) -> None:
    out = run("connections", "create", "--tenant", cli_env, "--kind", "hubspot",
              "--secret", "hubspot-client-secret")  # fmt: skip
    public_id = re.search(r"connection: (c[0-9a-f]{16})", out).group(1)  # type: ignore[union-attr]
    assert f"url: POST https://questline.example.org/webhooks/{public_id}" in out
    assert "secret: hubspot-client-secret" in out
    rotated = run("connections", "rotate", public_id, "--overlap", "3600")
    new_secret = re.search(r"secret: (\S+)", rotated).group(1)  # type: ignore[union-attr]
    from datetime import UTC, datetime, timedelta

    with committed_db.sessions() as session:
        now = datetime.now(UTC)
        both = load_connection(session, public_id, now)
        later = load_connection(session, public_id, now + timedelta(hours=2))
    assert both is not None and set(both.secrets) == {"hubspot-client-secret", new_secret}
    assert later is not None and later.secrets == (new_secret,)
    assert f"{public_id}\thubspot\tenabled\tidentity=id namespace={public_id}\t" in run(
        "connections", "list", "--tenant", cli_env
    )
    out = run("connections", "create", "--tenant", cli_env, "--kind", "moodle",
              "--identity", "email", "--namespace", "moodle-main")  # fmt: skip
    assert "identity=email namespace=moodle-main" in run("connections", "list", "--tenant", cli_env)
    out = run("connections", "create", "--tenant", cli_env, "--kind", "hubspot",
              "--secret", "s", "--won-stage", "closedwon", "--won-stage", "1234567")  # fmt: skip
    staged = re.search(r"connection: (c[0-9a-f]{16})", out).group(1)  # type: ignore[union-attr]
    with committed_db.sessions() as session:
        info = load_connection(session, staged, datetime.now(UTC))
    assert info is not None and info.config["won_stages"] == ["1234567", "closedwon"]
    run("connections", "disable", public_id)
    assert "disabled" in run("connections", "list", "--tenant", cli_env)
    with committed_db.sessions() as session:
        assert load_connection(session, public_id, datetime.now(UTC)) is None
        count = session.scalar(
            select(WebhookSecret.id).join(WebhookConnection).where(
                WebhookConnection.public_id == public_id
            ).limit(1)
        )  # fmt: skip
        assert count is not None


def test_generated_secrets_and_bad_options(cli_env: str) -> None:
    out = run("connections", "create", "--tenant", cli_env, "--kind", "standard")
    assert re.search(r"secret: whsec_[A-Za-z0-9+/=]{32}", out)
    result = CliRunner().invoke(main, ["connections", "create", "--tenant", cli_env,
                                       "--kind", "salesforce"])  # fmt: skip
    assert result.exit_code != 0 and "--org-id" in result.output
    result = CliRunner().invoke(main, ["connections", "create", "--tenant", "no-such-tenant",
                                       "--kind", "moodle"])  # fmt: skip
    assert result.exit_code != 0 and "no tenant" in result.output
    result = CliRunner().invoke(main, ["connections", "create", "--tenant", cli_env,
                                       "--kind", "moodle", "--won-stage", "closedwon"])  # fmt: skip
    assert result.exit_code != 0 and "only for hubspot" in result.output
    result = CliRunner().invoke(main, ["connections", "create", "--tenant", cli_env,
                                       "--kind", "hubspot", "--won-stage", "a b"])  # fmt: skip
    assert result.exit_code != 0 and "stage id" in result.output
