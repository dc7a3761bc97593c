"""The instructor's rules and analytics pages in a real browser (Debian's chromium, Playwright):
live validation as one types, simulate and activate by clicking, axe-core clean in light and
dark, no sideways scroll from 320 to 1280 px. Uses test_browser's live server and browser."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.widgets import test_browser
from tests.widgets.test_browser import ARTIFACTS, WIDTHS, Site, axe_violations, url

# test_browser's fixtures (the live server, the browser, a tab), shared by name.
site = test_browser.site
browser = test_browser.browser
page = test_browser.page

GOOD = """version: 2
xp:
  - id: lesson-completed
    on: lesson.completed
    points: 15
"""


def check_page(tab: Page, name: str) -> list[str]:
    problems = []
    for scheme in ("light", "dark"):
        tab.emulate_media(color_scheme=scheme)
        for width in WIDTHS:
            tab.set_viewport_size({"width": width, "height": 700})
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                problems.append(f"{name} {scheme} {width}px scrolls sideways by {overflow}px")
        tab.screenshot(path=str(ARTIFACTS / f"{name}-{scheme}.png"), full_page=True)
        problems += [f"{name} {scheme}: {v}" for v in axe_violations(tab)]
    return problems


def test_rules_page_live_validation_simulate_and_activate(site: Site, page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(
        url(site, role="instructor", course="course-1").replace(
            "/instructor?", "/instructor/rules?"
        )
    )
    editor = page.get_by_label("Rule set (YAML)")
    editor.fill(GOOD.replace("points: 15", "points: 15 *"))  # typing fires the live check
    page.get_by_text("xp[0].points").wait_for(timeout=10_000)
    assert editor.get_attribute("aria-invalid") == "true"
    assert "(line 5)" in page.inner_text("#rule-errors")
    problems = check_page(page, "rules-errors")
    editor.fill(GOOD)
    page.locator("#rule-errors").get_by_text("No errors.").wait_for(timeout=10_000)
    page.get_by_label("Simulate over the last").select_option("90d")
    page.get_by_role("button", name="Simulate").click()
    page.get_by_role("heading", name="Simulation").wait_for()
    assert "players would change" in page.inner_text("main")
    assert page.get_by_label("Rule set (YAML)").input_value() == GOOD  # the draft survives
    problems += check_page(page, "rules-simulated")
    page.get_by_label("With retro: re-score past events under the new rules").check()
    page.get_by_role("button", name="Save and activate").click()
    page.get_by_text("is active and history was re-scored").wait_for()
    assert "points: 15" in page.get_by_label("Rule set (YAML)").input_value()
    assert problems == []


def test_analytics_page_by_keyboard_and_axe(site: Site, page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    roster = url(site, role="instructor")
    page.goto(roster)
    page.get_by_role("link", name="Analytics").click()
    page.get_by_role("heading", name="XP distribution").wait_for()
    assert page.locator("svg.histogram rect").count() >= 1
    problems = check_page(page, "analytics")
    page.get_by_label("Inactive for (days)").fill("1")
    page.get_by_label("Inactive for (days)").press("Enter")  # the form submits by keyboard
    page.wait_for_url("**days=1**")
    assert "Inactive for 1 day or more" in page.inner_text("main")
    assert problems == []
