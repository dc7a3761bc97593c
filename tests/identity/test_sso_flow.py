"""The whole SSO login against a real OpenID Certified provider, driven by a requests browser."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from identity.models import IdentityAudit
from questline.models import Player, PlayerIdentity
from tests.identity.conftest import SsoWorld, parse_form, sign_in


def _identities(world: SsoWorld, player_id: int) -> set[tuple[str, str]]:
    with world.db.sessions() as session:
        rows = session.execute(
            select(PlayerIdentity.kind, PlayerIdentity.value).where(
                PlayerIdentity.tenant_id == world.tenant.id, PlayerIdentity.player_id == player_id
            )
        )
        return {(k, v) for k, v in rows}


def _me_player(response: requests.Response) -> int:
    assert response.status_code == 200, response.text[:500]
    assert response.url.endswith("/me"), response.url
    marker = 'data-player="'
    start = response.text.index(marker) + len(marker)
    return int(response.text[start : response.text.index('"', start)])


def test_login_creates_player_with_sso_employee_and_verified_email(world: SsoWorld) -> None:
    browser = requests.Session()
    response = sign_in(world, browser, "alice", "alice-pw")
    player_id = _me_player(response)
    assert "Alice Example" in response.text
    assert _identities(world, player_id) == {
        ("sso", f"{world.idp.issuer}|alice"),
        ("employee", "E-100"),
        ("email", "alice@acme.test"),
    }
    # The session is the proof: /me answers without logging in again, and a second login
    # lands on the same player.
    assert _me_player(browser.get(world.base + "/me", timeout=10)) == player_id
    again = sign_in(world, requests.Session(), "alice", "alice-pw")
    assert _me_player(again) == player_id


def test_wrong_password_never_reaches_questline(world: SsoWorld) -> None:
    browser = requests.Session()
    response = sign_in(world, browser, "alice", "not-her-password")
    assert response.url.startswith(world.idp.issuer)
    assert "Invalid user name or password" in response.text
    me = browser.get(world.base + "/me", timeout=10, allow_redirects=False)
    assert me.status_code == 302 and me.headers["Location"].endswith("/sso/logged-out")
    with world.db.sessions() as session:
        assert session.scalar(select(Player.id).where(Player.tenant_id == world.tenant.id)) is None


def test_verified_email_links_to_the_lms_player(world: SsoWorld) -> None:
    with world.db.session() as session:
        lms = Player(tenant_id=world.tenant.id, display_name="Alice (LMS)", email=None)
        session.add(lms)
        session.flush()
        session.add(
            PlayerIdentity(
                tenant_id=world.tenant.id, player_id=lms.id, kind="email", value="alice@acme.test"
            )
        )
        lms_id = lms.id
    # Employee-id linking is off in this world only if the claim matches nobody: it does not.
    player_id = _me_player(sign_in(world, requests.Session(), "alice", "alice-pw"))
    assert player_id == lms_id
    with world.db.sessions() as session:
        rules = [
            a.detail["rule"]
            for a in session.scalars(
                select(IdentityAudit).where(
                    IdentityAudit.tenant_id == world.tenant.id, IdentityAudit.action == "sso_link"
                )
            )
        ]
    assert rules == ["verified_email"]


def test_employee_claim_links_to_the_crm_player(world: SsoWorld) -> None:
    with world.db.session() as session:
        crm = Player(tenant_id=world.tenant.id, display_name="A. Example (CRM)")
        session.add(crm)
        session.flush()
        session.add(
            PlayerIdentity(
                tenant_id=world.tenant.id, player_id=crm.id, kind="employee", value="E-100"
            )
        )
        crm_id = crm.id
    assert _me_player(sign_in(world, requests.Session(), "alice", "alice-pw")) == crm_id


def test_unverified_email_is_never_linked_nor_stored(world: SsoWorld) -> None:
    with world.db.session() as session:
        victim = Player(tenant_id=world.tenant.id, display_name="Real Bob", email="bob@acme.test")
        session.add(victim)
        session.flush()
        session.add(
            PlayerIdentity(
                tenant_id=world.tenant.id, player_id=victim.id, kind="email", value="bob@acme.test"
            )
        )
        victim_id = victim.id
    player_id = _me_player(sign_in(world, requests.Session(), "bob", "bob-pw"))
    assert player_id != victim_id
    assert _identities(world, player_id) == {("sso", f"{world.idp.issuer}|bob")}
    assert _identities(world, victim_id) == {("email", "bob@acme.test")}
    with world.db.sessions() as session:
        assert session.get(Player, player_id).email is None  # type: ignore[union-attr]


def test_allowed_domains_refuse_other_and_unverified_emails(world: SsoWorld) -> None:
    from identity.config import configure_sso

    with world.db.session() as session:
        configure_sso(
            session,
            world.tenant.id,
            {"allowed_domains": ["acme.test"]},
            actor="test",
            secret_key=world.ctx.settings.secret_key,
        )
    carol = sign_in(world, requests.Session(), "carol", "carol-pw")
    assert carol.status_code == 403 and "domain is not allowed" in carol.json()["message"]
    bob = sign_in(world, requests.Session(), "bob", "bob-pw")
    assert bob.status_code == 403 and "verified email" in bob.json()["message"]
    assert _me_player(sign_in(world, requests.Session(), "alice", "alice-pw")) > 0


def test_logout_ends_both_sessions(world: SsoWorld) -> None:
    browser = requests.Session()
    _me_player(sign_in(world, browser, "alice", "alice-pw"))
    confirm = browser.post(world.base + "/sso/logout", timeout=10)
    # The provider asks to confirm (RP-initiated logout); a browser submits its form.
    assert confirm.url.startswith(world.idp.issuer + "/session/end"), confirm.url
    action, fields = parse_form(confirm.text)
    assert fields.get("logout") == "yes"
    done = browser.post(requests.compat.urljoin(confirm.url, action), data=fields, timeout=10)
    assert done.url == world.base + "/sso/logged-out"
    assert "signed out" in done.text
    me = browser.get(world.base + "/me", timeout=10, allow_redirects=False)
    assert me.status_code == 302
    # The provider's session is gone too: signing in again asks for the password.
    page = browser.get(world.login_url(), timeout=10)
    assert page.url.startswith(world.idp.issuer) and "Sign in" in page.text


def test_callback_without_a_started_login_is_refused(world: SsoWorld) -> None:
    response = requests.get(
        f"{world.base}/sso/{world.tenant.id}/callback?code=x&state=y", timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"] == "no_login_in_progress"


def test_state_mismatch_is_refused(world: SsoWorld) -> None:
    browser = requests.Session()
    start = browser.get(world.login_url(), timeout=10, allow_redirects=False)
    assert start.status_code == 302 and "code_challenge_method=S256" in start.headers["Location"]
    response = browser.get(
        f"{world.base}/sso/{world.tenant.id}/callback?code=x&state=forged", timeout=10
    )
    assert response.status_code == 400 and response.json()["error"] == "state_mismatch"


def test_unknown_tenant_and_unconfigured_tenant(world: SsoWorld) -> None:
    from tests.conftest import new_tenant

    plain = new_tenant(world.db)
    assert requests.get(f"{world.base}/sso/999999999/login", timeout=10).status_code == 404
    response = requests.get(f"{world.base}/sso/{plain.id}/login", timeout=10)
    assert response.status_code == 404 and response.json()["error"] == "sso_not_configured"


def test_me_shows_crm_points_beside_training_xp(world: SsoWorld) -> None:
    from datetime import UTC, datetime

    from questline.models import InboxEvent, XpLedger

    browser = requests.Session()
    player_id = _me_player(sign_in(world, browser, "alice", "alice-pw"))
    now = datetime.now(UTC)
    with world.db.session() as session:
        for n, (source, amount) in enumerate((("hubspot", 40), ("api", 25))):
            inbox = InboxEvent(
                tenant_id=world.tenant.id,
                source=source,
                event_key=f"k{n}",
                event_type="deal.won" if source == "hubspot" else "lesson.completed",
                raw="{}",
                canonical={},
                occurred_at=now,
                received_at=now,
                status="applied",
                player_id=player_id,
            )
            session.add(inbox)
            session.flush()
            session.add(
                XpLedger(
                    tenant_id=world.tenant.id,
                    player_id=player_id,
                    idempotency_key=f"k{n}:rule",
                    inbox_event_id=inbox.id,
                    rule_id="rule",
                    amount=amount,
                    explanation="test",
                    occurred_at=now,
                )
            )
        player = session.get(Player, player_id)
        assert player is not None
        player.xp = 65
    page = browser.get(world.base + "/me", timeout=10).text
    assert '<td id="crm-xp">40</td>' in page
    assert '<td id="training-xp">25</td>' in page
    data = browser.get(world.base + "/api/v1/me", timeout=10).json()
    assert (data["xp"], data["crm_xp"], data["training_xp"]) == (65, 40, 25)


def test_sign_in_expires(world: SsoWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    import identity.auth

    browser = requests.Session()
    _me_player(sign_in(world, browser, "alice", "alice-pw"))
    monkeypatch.setattr(identity.auth, "SESSION_MAX_SECONDS", -1)
    me = browser.get(world.base + "/me", timeout=10, allow_redirects=False)
    assert me.status_code == 302 and me.headers["Location"].endswith("/sso/logged-out")
    assert browser.get(world.base + "/api/v1/me", timeout=10).status_code == 401


def _started(world: SsoWorld, browser: requests.Session, query: str = "") -> str:
    """Start a login and return the state Questline sent to the provider."""
    from urllib.parse import parse_qs, urlsplit

    start = browser.get(world.login_url() + query, timeout=10, allow_redirects=False)
    assert start.status_code == 302
    params = parse_qs(urlsplit(start.headers["Location"]).query)
    assert params["code_challenge_method"] == ["S256"] and params["nonce"][0]
    return params["state"][0]


def test_provider_error_is_a_403_naming_it(world: SsoWorld) -> None:
    browser = requests.Session()
    state = _started(world, browser)
    response = browser.get(
        f"{world.base}/sso/{world.tenant.id}/callback",
        params={"error": "access_denied", "error_description": "user said no", "state": state},
        timeout=10,
    )
    assert response.status_code == 403
    assert (
        response.json()["error"] == "idp_refused" and "access_denied" in response.json()["message"]
    )


def test_next_is_local_only(world: SsoWorld) -> None:
    browser = requests.Session()
    page = browser.get(world.login_url() + "?next=//evil.example/", timeout=20)
    action, fields = parse_form(page.text)
    fields.update(login="alice", password="alice-pw")
    done = browser.post(requests.compat.urljoin(page.url, action), data=fields, timeout=20)
    assert done.url == world.base + "/me"
