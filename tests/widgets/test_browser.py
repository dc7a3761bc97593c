"""The widgets in a real browser: Debian's chromium driven by Playwright for Python.

A real Questline (real PostgreSQL with commits, real Redis, the pipeline inline) serves on a
loopback port. Each widget and dashboard page is checked with axe-core (from npm, installed by
scripts/browser) for serious or critical WCAG 2.1 AA violations, at 320-1280 px for horizontal
scroll, in light and dark, for CSS+JS weight and for requests to anyone else. Clicks, keyboard
use and a live update are driven for real. Screenshots land in tests/widgets/artifacts/.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from flask.testing import FlaskClient
from playwright.sync_api import BrowserContext, Page, sync_playwright
from sqlalchemy import delete
from werkzeug.serving import make_server

from questline import create_app
from questline.db import Database
from questline.models import Tenant
from questline.settings import Settings
from tests.conftest import (
    QUEUE_NAME,
    REDIS_PREFIX,
    REDIS_URL,
    TenantHandle,
    make_context,
    new_tenant,
)
from tests.conftest import event as make_event
from tests.widgets.helpers import embed, ingest, learners
from tests.widgets.test_instructor import example_rules

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = HERE / "artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (320, 768, 1280)
WIDGETS = (
    "leaderboard",
    "league",
    "badges",
    "level",
    "streak",
    "quests",
    "activity",
    "dashboard",
)
BUDGET_BYTES = 50 * 1024


@dataclass
class Site:
    origin: str
    client: FlaskClient
    tenant: TenantHandle
    ids: dict[str, int]


@pytest.fixture(scope="module")
def site(pg_url: str, redis_server: redis.Redis) -> Iterator[Site]:
    """Questline on a loopback port, with one tenant of learners; the tenant is deleted after."""
    if not Path(CHROMIUM).exists() or not AXE.exists():
        pytest.fail("run scripts/browser first: chromium and axe-core are required")
    settings = Settings(
        database_url=pg_url,
        redis_url=REDIS_URL,
        redis_prefix=REDIS_PREFIX,
        queue_name=QUEUE_NAME,
        secret_key="browser-test-secret",
        log_json=True,
    )
    database = Database(pg_url)
    app = create_app(settings, context=make_context(settings, database, redis_server))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tenant = new_tenant(database)
    client = app.test_client()
    example_rules(database, tenant)
    on = client.put(
        "/api/v1/leagues/config",
        json={"cohort_size": 10, "promote": 2, "demote": 2},
        headers=tenant.auth,
    )
    assert on.status_code == 200, on.get_json()
    ids = learners(client, tenant, {f"learner-{i:02d}": 14 - i for i in range(14)})
    ingest(client, tenant, [make_event("long", actor="learner-13", object={"id": "x" * 40})])
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # this week: joins a league cohort
    ingest(
        client,
        tenant,
        [
            make_event(f"now-{a}", actor=a, at=now)
            for a in ("learner-11", "learner-02", "learner-07")
        ],
    )
    # Two passed quizzes today complete learner-04's daily quest (claimed in a test below).
    ingest(
        client,
        tenant,
        [
            make_event(
                f"quiz-{i}",
                type="quiz.submitted",
                actor="learner-04",
                at=now,
                result={"score": 1.0, "passed": True},
            )
            for i in range(2)
        ],
    )
    try:
        yield Site(f"http://127.0.0.1:{server.server_port}", client, tenant, ids)
    finally:
        server.shutdown()
        with database.session() as session:
            session.execute(delete(Tenant).where(Tenant.id == tenant.id))
        database.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Debian's chromium with a fresh profile; never a browser downloaded by a test tool."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            bypass_csp=True,  # lets the test inject axe-core; the app's own CSP is checked below
        )
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    tab = browser.new_page()
    yield tab
    tab.close()


def url(site: Site, **body: Any) -> str:
    path, _ = embed(site.client, site.tenant, **body)
    return site.origin + path


def axe_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
             values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}}))
           .violations.map(v => ({id: v.id, impact: v.impact,
             nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def pages(site: Site) -> dict[str, str]:
    viewer = site.ids["learner-11"]
    out = {name: url(site, player_id=viewer, widget=name) for name in WIDGETS}
    out["leaderboard-week"] = url(site, player_id=viewer, params={"window": "week"})
    roster = url(site, role="instructor")
    out["instructor"] = roster
    token = roster.split("token=")[1]
    out["instructor-player"] = f"{site.origin}/widgets/instructor/players/{viewer}?token={token}"
    return out


def test_every_page_is_accessible_fits_and_stays_small(site: Site, page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    seen: list[str] = []
    weights: dict[str, int] = {}
    page.on("request", lambda request: seen.append(request.url))

    def weigh(response: Any) -> None:
        if response.request.resource_type in ("stylesheet", "script"):
            weights[response.url] = len(response.body())

    page.on("response", weigh)
    problems: list[str] = []
    for name, address in pages(site).items():
        response = page.goto(address)
        assert response is not None and response.status == 200, (name, response)
        assert "default-src 'none'" in response.headers.get("content-security-policy", "")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)  # re-styles in place, no reload needed
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 700})
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if overflow > 0:
                    problems.append(f"{name} {scheme} {width}px scrolls sideways by {overflow}px")
                if width in (WIDTHS[0], WIDTHS[-1]):
                    shot = ARTIFACTS / f"{name}-{scheme}-{width}.png"
                    page.screenshot(path=str(shot), full_page=True)
            for violation in axe_violations(page):
                problems.append(f"{name} {scheme}: {violation}")
    assert problems == []
    origin = urlsplit(site.origin).netloc
    assert {urlsplit(u).netloc for u in seen if not u.startswith("data:")} == {origin}
    assert weights and sum(weights.values()) <= BUDGET_BYTES, weights


def test_live_update_without_reload(site: Site, page: Page) -> None:
    viewer = site.ids["learner-12"]
    page.goto(url(site, player_id=viewer, widget="level", params={"poll": 2}))
    page.evaluate("window.__loaded = true")  # survives only if the page is not reloaded
    xp = page.locator("p.big strong")
    before = int(xp.inner_text())
    ingest(
        site.client,
        site.tenant,
        [make_event("live-1", actor="learner-12")],
    )
    page.wait_for_function(
        f"document.querySelector('p.big strong').textContent.trim() === '{before + 10}'",
        timeout=10_000,
    )
    assert page.evaluate("window.__loaded") is True
    assert page.locator("#live-status").inner_text() == "Updated."
    page.screenshot(path=str(ARTIFACTS / "live-update.png"))


def test_opt_out_by_keyboard_and_click(site: Site, page: Page) -> None:
    viewer = site.ids["learner-03"]
    page.goto(url(site, player_id=viewer))
    button = page.get_by_role("button", name="Hide my name from others")
    for _ in range(10):  # reach the button with Tab alone
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "BUTTON":
            break
    assert page.evaluate("document.activeElement.textContent").strip() == button.inner_text()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Show my name to others").wait_for()
    others = page.goto(url(site, player_id=site.ids["learner-00"]))
    assert others is not None
    board = page.inner_text("tbody")
    assert "Learner-03" not in board and "Anonymous learner" in board
    page.goto(url(site, player_id=viewer))
    page.get_by_role("button", name="Show my name to others").click()
    page.get_by_role("button", name="Hide my name from others").wait_for()


def test_instructor_revokes_a_badge_by_clicking(site: Site, page: Page) -> None:
    viewer = site.ids["learner-00"]  # 14 lessons: holds Bookworm
    page.goto(url(site, role="instructor"))
    page.get_by_role("link", name="Learner-00").click()
    page.get_by_label("Reason").first.fill("duplicate account")
    page.get_by_role("button", name="Revoke").first.click()
    page.get_by_text("Badge revoked.").wait_for()
    assert "Revoked: duplicate account" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "instructor-revoked.png"), full_page=True)
    assert viewer


def test_reduced_motion_is_respected(site: Site, page: Page) -> None:
    address = url(site, player_id=site.ids["learner-05"], widget="level")
    durations = {}
    for motion in ("no-preference", "reduce"):
        page.emulate_media(reduced_motion=motion)
        page.goto(address)
        durations[motion] = page.evaluate(
            "getComputedStyle(document.querySelector('.bar .fill')).transitionDuration"
        )
    assert durations == {"no-preference": "0.4s", "reduce": "0s"}


def test_spanish_widget_in_the_browser(site: Site, page: Page) -> None:
    page.goto(url(site, player_id=site.ids["learner-01"], widget="streak", locale="es"))
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.get_by_role("heading", name="Racha").is_visible()
    page.screenshot(path=str(ARTIFACTS / "streak-es.png"))


def test_claim_a_quest_by_clicking(site: Site, page: Page) -> None:
    page.goto(url(site, player_id=site.ids["learner-04"], widget="quests"))
    card = page.locator("li.quest", has_text="Daily practice")
    card.get_by_role("button", name="Claim reward").click()
    notice = page.get_by_role("status").filter(has_text="Reward claimed")
    notice.wait_for()
    assert "+20 XP, +5 coins" in notice.inner_text()
    assert "Claimed." in card.inner_text()
    assert card.get_by_role("button", name="Claim reward").count() == 0
    assert axe_violations(page) == []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 700})
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        ), width
    page.screenshot(path=str(ARTIFACTS / "quest-claimed.png"), full_page=True)
