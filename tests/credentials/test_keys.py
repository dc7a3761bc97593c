"""Key rotation: a new key signs, old credentials keep verifying, a retired key vouches for
nothing; and the ``questline badges`` commands that do it (on the embedded SQLite default)."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner

from credentials import service
from questline.cli import main
from tests.credentials.conftest import issue, make_award, verify_json


def test_rotation_then_retirement(client, db, tenant, award) -> None:
    first = issue(client, tenant, *award)
    old_method = first["credential"]["proof"]["verificationMethod"]
    with db.session() as session:
        new = service.add_key(session, tenant.id, "test-secret")
    second = issue(client, tenant, *make_award(db, tenant, badge_id="second", email=None))
    assert second["credential"]["proof"]["verificationMethod"].endswith("#" + new.multikey)
    profile = client.get(f"/ob/v3/issuers/{tenant.id}").get_json(force=True)
    published = [method["id"] for method in profile["verificationMethod"]]
    assert old_method in published and len(published) == 2
    assert verify_json(client, first["credential"])["status"] == "valid"
    assert verify_json(client, second["credential"])["status"] == "valid"
    with db.session() as session:
        retired = service.retire_key(
            session, tenant.id, old_method.split("#")[1], datetime.now(UTC)
        )
        assert retired
        assert not service.retire_key(session, tenant.id, "z6MkNope", datetime.now(UTC))
    profile = client.get(f"/ob/v3/issuers/{tenant.id}").get_json(force=True)
    assert old_method not in [method["id"] for method in profile["verificationMethod"]]
    assert verify_json(client, first["credential"])["status"] == "unknown_issuer"
    assert verify_json(client, {"jwt": first["jwt"]})["status"] == "unknown_issuer"
    assert verify_json(client, second["credential"])["status"] == "valid"


def test_badges_commands(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QUESTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'q.db'}")
    monkeypatch.delenv("QUESTLINE_REDIS_URL", raising=False)
    monkeypatch.setenv("QUESTLINE_SECRET_KEY", "cli-secret")
    monkeypatch.setenv("QUESTLINE_LOG_LEVEL", "WARNING")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    run("db", "upgrade")
    run("tenants", "create", "CLI School")
    assert "no keys yet" in run("badges", "keys", "1")
    first = run("badges", "rotate-key", "1").split()[-1]
    second = run("badges", "rotate-key", "1").split()[-1]
    listing = run("badges", "keys", "1")
    assert first in listing and second in listing and listing.count("active") == 2
    assert run("badges", "retire-key", "1", first).strip() == f"retired {first}"
    assert "retired" in run("badges", "keys", "1").splitlines()[0]
    again = runner.invoke(main, ["badges", "retire-key", "1", first])
    assert again.exit_code != 0 and "no active key" in again.output
    missing = runner.invoke(main, ["badges", "keys", "99"])
    assert missing.exit_code != 0 and "no tenant 99" in missing.output
