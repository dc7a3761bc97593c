"""The instructor's analytics page with real data through the real ingest path: learners at risk
(streak near its end, inactive), the XP histogram, badges earned, and the economy (coins minted
by rules and grants against coins spent in the shop)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from questline.db import Database
from tests.conftest import TenantHandle, event
from tests.widgets.helpers import embed, ingest, player_id
from tests.widgets.test_instructor import example_rules, text
from widgets.analytics import _nice

PAGE = "/widgets/instructor/analytics"


def at(days_ago: int, hour: int = 12) -> str:
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def classroom(client: FlaskClient, db: Database, tenant: TenantHandle) -> dict[str, int]:
    """ada: active yesterday only (streak at risk tonight); bo: last seen 13 days ago; cy: ten
    lessons today (Bookworm), a finished course (50 coins), a streak freeze bought (40 coins),
    10 coins granted by hand; dee: in another course only."""
    example_rules(db, tenant)
    ingest(
        client,
        tenant,
        [event("a1", actor="ada", at=at(1))]
        + [event(f"b{i}", actor="bo", at=at(13, 9 + i)) for i in range(2)]
        + [event(f"c{i}", actor="cy", at=at(0, 0)) for i in range(10)]
        + [event("c-done", actor="cy", type="course.completed", at=at(0, 0))]
        + [event("d1", actor="dee", course="course-2", at=at(0, 0))],
    )
    ids = {a: player_id(client, tenant, a) for a in ("ada", "bo", "cy", "dee")}
    bought = client.post(
        f"/api/v1/players/{ids['cy']}/purchases",
        json={"item": "streak-freeze", "request_id": "buy-1"},
        headers=tenant.auth,
    )
    assert bought.status_code in (200, 201), bought.get_json()
    granted = client.post(
        f"/api/v1/players/{ids['cy']}/wallet/grant",
        json={"amount": 10, "reason": "helped", "request_id": "grant-1"},
        headers=tenant.auth,
    )
    assert granted.status_code in (200, 201), granted.get_json()
    return ids


def test_analytics_for_the_whole_tenant(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    ids = classroom(client, db, tenant)
    token = embed(client, tenant, role="instructor")[1]
    page = client.get(f"{PAGE}?token={token}&hours=24&days=7")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    body = text(html)
    assert "Streak ends within 24 hours: 1" in body and "Ada 1" in body
    assert "Inactive for 7 days or more: 1" in body and f"Bo {at(13)[:10]} (13 days ago)" in body
    # XP: ada 10, bo 20, dee 10, cy 10 lessons (100 XP, capped per day) + course (200) = 300.
    assert "4 players" in body
    rows = re.findall(r"<tr><td>(\d+)\u2013(\d+)</td><td class=\"num\">(\d+)</td></tr>", html)
    counted = {(int(lo), int(hi)): int(n) for lo, hi, n in rows}
    assert sum(counted.values()) == 4
    assert counted.get((0, 49)) == 3, counted
    assert counted[(300, 349)] == 1
    assert '<svg class="histogram"' in html and "<title>0\u201349 XP: 3</title>" in html
    assert "Bookworm 1" in body
    assert "Coins minted 60" in body and "Coins spent 40" in body
    assert "In circulation 20" in body and "Spent of minted 67%" in body
    assert "grant 10 0" in body and "purchase 0 40" in body and "rule 50 0" in body
    assert ids


def test_analytics_narrow_to_the_tokens_course(
    client: FlaskClient, db: Database, tenant: TenantHandle
) -> None:
    classroom(client, db, tenant)
    token = embed(client, tenant, role="instructor", course="course-2")[1]
    body = text(client.get(f"{PAGE}?token={token}&hours=24").get_data(as_text=True))
    assert "1 player (course XP)" in body
    assert "Streak ends within 24 hours: 0" in body and "Ada" not in body
    assert "No badges earned yet." in body and "Coins minted 0" in body


def test_bad_options_and_roles(client: FlaskClient, tenant: TenantHandle) -> None:
    token = embed(client, tenant, role="instructor")[1]
    bad = client.get(f"{PAGE}?token={token}&hours=0")
    assert bad.status_code == 400 and "hours" in bad.get_json()["message"]
    bad = client.get(f"{PAGE}?token={token}&days=x")
    assert bad.status_code == 400 and "days" in bad.get_json()["message"]
    empty = text(client.get(f"{PAGE}?token={token}").get_data(as_text=True))
    assert "No players yet." in empty and "Nobody right now." in empty
    ingest(client, tenant, [event("e1", actor="ada")])
    learner = embed(client, tenant, player_id=player_id(client, tenant, "ada"))[1]
    assert client.get(f"{PAGE}?token={learner}").status_code == 403


def test_bin_widths_read_well() -> None:
    assert [_nice(s) for s in (0, 1, 9, 95, 300, 1234, 99999)] == [1, 1, 1, 10, 50, 200, 10000]
