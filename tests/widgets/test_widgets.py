"""The learner widgets over HTTP, on real PostgreSQL and Redis: signed URLs, what each widget
shows, live polling with ETag, opt-out and anonymity, degraded reads, tenant isolation."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from questline import create_app
from questline.settings import Settings
from tests.conftest import TenantHandle, dead_redis, event, make_context, new_tenant
from tests.widgets.helpers import embed, ingest, learners, player_id
from workers.context import Context


def rows(html: str) -> list[str]:
    """The board's rows as plain text, whitespace collapsed."""
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    cells = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in cells]


def test_leaderboard_shows_top_and_the_viewer_with_neighbours(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    counts = {f"learner-{i:02d}": 20 - i for i in range(12)}
    ids = learners(client, tenant, counts)
    path, _ = embed(
        client, tenant, player_id=ids["learner-10"], params={"limit": 3, "neighbours": 1}
    )
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    shown = rows(html)
    assert shown[0].startswith("1 Learner-00")
    assert shown[2].startswith("3 Learner-02")
    assert shown[3] == "⋯"
    assert [r.split()[0] for r in shown[4:]] == ["10", "11", "12"]
    assert "you" in shown[5] and "Learner-10" in shown[5]
    assert "You are #11 of 12." in html
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors *" in response.headers["Content-Security-Policy"]


def test_each_widget_renders_the_players_state(client: FlaskClient, tenant: TenantHandle) -> None:
    ids = learners(client, tenant, {"ada": 3})
    for name, expected in {
        "level": "XP",
        "streak": "Longest",
        "badges": "Badges",
        "activity": "Recent activity",
    }.items():
        path, _ = embed(client, tenant, player_id=ids["ada"], widget=name)
        response = client.get(path)
        assert response.status_code == 200, name
        assert expected in response.get_data(as_text=True), name
    path, _ = embed(client, tenant, player_id=ids["ada"], widget="activity")
    feed = client.get(path).get_data(as_text=True)
    assert feed.count("+") >= 3  # one line per award, each with its explanation


def test_fragment_polling_answers_304_until_the_player_earns(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    ids = learners(client, tenant, {"ada": 2, "bob": 1})
    _, token = embed(client, tenant, player_id=ids["ada"], widget="level")
    fragment = f"/widgets/level/fragment?token={token}"
    first = client.get(fragment)
    assert first.status_code == 200 and first.headers["ETag"]
    same = client.get(fragment, headers={"If-None-Match": first.headers["ETag"]})
    assert same.status_code == 304
    ingest(client, tenant, [event("ada-more", actor="ada", at="2026-11-21T09:00:00Z")])
    changed = client.get(fragment, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]


def test_bad_tokens_are_refused_with_a_reason(client: FlaskClient, tenant: TenantHandle) -> None:
    ids = learners(client, tenant, {"ada": 1})
    _, token = embed(client, tenant, player_id=ids["ada"])
    missing = client.get("/widgets/leaderboard")
    assert missing.status_code == 403 and "no token" in missing.get_json()["message"]
    forged = client.get(f"/widgets/leaderboard?token={token[:-2]}xx")
    assert forged.status_code == 403 and "signature" in forged.get_json()["message"]
    unknown = client.get(f"/widgets/trophies?token={token}")
    assert unknown.status_code == 404
    bad = client.get(f"/widgets/leaderboard?token={token}&limit=500")
    assert bad.status_code == 400 and "limit" in bad.get_json()["message"]
    bad = client.get(f"/widgets/leaderboard?token={token}&board=nope")
    assert bad.status_code == 400 and "board" in bad.get_json()["message"]


def test_expired_token_is_refused(app: Flask, client: FlaskClient, tenant: TenantHandle) -> None:
    from widgets.signing import EmbedGrant, sign

    ids = learners(client, tenant, {"ada": 1})
    token = sign(app.config["SECRET_KEY"], EmbedGrant(tenant.id, ids["ada"]), ttl_seconds=60, now=0)
    response = client.get(f"/widgets/leaderboard?token={token}")
    assert response.status_code == 403 and "expired" in response.get_json()["message"]


def test_a_token_signed_with_another_secret_is_refused(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    from widgets.signing import EmbedGrant, sign

    ids = learners(client, tenant, {"ada": 1})
    token = sign("another-secret", EmbedGrant(tenant.id, ids["ada"]), ttl_seconds=600)
    assert client.get(f"/widgets/level?token={token}").status_code == 403


def test_embed_url_api_validates_its_input(client: FlaskClient, tenant: TenantHandle) -> None:
    ids = learners(client, tenant, {"ada": 1})
    cases = [
        ({"widget": "level"}, "player_id"),
        ({"player_id": ids["ada"], "widget": "nope"}, "widget"),
        ({"player_id": ids["ada"], "locale": "fr"}, "locale"),
        ({"player_id": ids["ada"], "ttl_seconds": 5}, "ttl_seconds"),
        ({"player_id": ids["ada"], "params": {"window": "year"}}, "window"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/widgets/embed-url", json=body, headers=tenant.auth)
        assert 400 <= response.status_code < 500, body
        assert field in response.get_json()["message"], body
    no_key = client.post("/api/v1/widgets/embed-url", json={"player_id": ids["ada"]})
    assert no_key.status_code == 401


def test_a_tenant_cannot_show_another_tenants_player(
    client: FlaskClient, tenant: TenantHandle, other_tenant: TenantHandle
) -> None:
    ids = learners(client, tenant, {"ada": 1})
    response = client.post(
        "/api/v1/widgets/embed-url", json={"player_id": ids["ada"]}, headers=other_tenant.auth
    )
    assert response.status_code == 404


def test_opt_out_hides_the_name_from_others_but_not_from_oneself(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    ids = learners(client, tenant, {"ada": 3, "bob": 2})
    ada_path, ada_token = embed(client, tenant, player_id=ids["ada"])
    bob_path, _ = embed(client, tenant, player_id=ids["bob"])
    assert "Ada" in rows(client.get(bob_path).get_data(as_text=True))[0]
    answer = client.post("/widgets/preferences", data={"token": ada_token, "opt_out": "1"})
    assert answer.status_code == 303
    assert rows(client.get(bob_path).get_data(as_text=True))[0] == "1 Anonymous learner 30"
    own = client.get(ada_path).get_data(as_text=True)
    assert "Ada" in rows(own)[0] and "Show my name to others" in own
    bad = client.post("/widgets/preferences", data={"token": ada_token, "opt_out": "maybe"})
    assert bad.status_code == 400


def test_anonymise_hides_everyone_but_the_viewer(client: FlaskClient, tenant: TenantHandle) -> None:
    ids = learners(client, tenant, {"ada": 3, "bob": 2})
    path, _ = embed(client, tenant, player_id=ids["bob"], params={"anonymise": 1})
    shown = rows(client.get(path).get_data(as_text=True))
    assert shown == ["1 Anonymous learner 30", "2 Bob you 20"]


def test_windowed_boards_count_this_weeks_and_months_xp(
    settings: Settings, ctx: Context, client: FlaskClient, tenant: TenantHandle
) -> None:
    ids = learners(client, tenant, {"ada": 2, "bob": 1})
    for win, title in (("week", "This week"), ("month", "This month"), ("all_time", "Leader")):
        path, _ = embed(client, tenant, player_id=ids["bob"], params={"window": win})
        html = client.get(path).get_data(as_text=True)
        assert title in html
        assert rows(html) == ["1 Ada 20", "2 Bob you 10"], win
    # The same windows from PostgreSQL when Redis is down.
    broken = create_app(settings, context=make_context(settings, ctx.db, dead_redis()))
    for win in ("week", "month"):
        path, _ = embed(client, tenant, player_id=ids["bob"], params={"window": win})
        html = broken.test_client().get(path).get_data(as_text=True)
        assert "stored totals" in html and rows(html) == ["1 Ada 20", "2 Bob you 10"], win


def test_spanish_from_the_token(client: FlaskClient, tenant: TenantHandle) -> None:
    ids = learners(client, tenant, {"ada": 2})
    path, _ = embed(client, tenant, player_id=ids["ada"], locale="es")
    html = client.get(path).get_data(as_text=True)
    assert '<html lang="es">' in html
    assert "Clasificación" in html and "Leaderboard" not in html


def test_board_degrades_to_postgres_when_redis_is_down(
    settings: Settings, ctx: Context, client: FlaskClient, tenant: TenantHandle
) -> None:
    ids = learners(client, tenant, {"ada": 3, "bob": 2})
    broken = make_context(settings, ctx.db, dead_redis())
    app = create_app(settings, context=broken)
    path, _ = embed(client, tenant, player_id=ids["bob"])
    response = app.test_client().get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "stored totals" in html
    assert rows(html) == ["1 Ada 30", "2 Bob you 20"]


def test_render_widget_seam_for_the_lti_launch(app: Flask, client: FlaskClient, db: object) -> None:
    from widgets.render import render_widget

    tenant = new_tenant(db)  # type: ignore[arg-type]
    ids = learners(client, tenant, {"ada": 2})
    with app.test_request_context("/lti/launch"):
        html = render_widget("level", tenant.id, ids["ada"], {"locale": "es-ES"})
    assert '<html lang="es">' in html and "Nivel" in html
    token = re.search(r"token=([^&\"]+)", html)
    assert token is not None
    assert client.get(f"/widgets/level/fragment?token={token.group(1)}").status_code == 200


def test_the_page_etag_matches_its_first_poll(client: FlaskClient, tenant: TenantHandle) -> None:
    ids = learners(client, tenant, {"ada": 2})
    for name in ("leaderboard", "level", "badges", "streak", "activity"):
        path, token = embed(client, tenant, player_id=ids["ada"], widget=name)
        html = client.get(path).get_data(as_text=True)
        tag = re.search(r'data-etag="([0-9a-f]+)"', html)
        assert tag is not None
        poll = client.get(
            f"/widgets/{name}/fragment?token={token}", headers={"If-None-Match": f'"{tag[1]}"'}
        )
        assert poll.status_code == 304, name


def test_instructor_url_seam(app: Flask, client: FlaskClient, tenant: TenantHandle) -> None:
    from widgets.render import instructor_url

    learners(client, tenant, {"ada": 1})
    with app.test_request_context("/lti/launch"):
        address = instructor_url(tenant.id, locale="es")
    page = client.get(address)
    assert page.status_code == 200 and "Lista de participantes" in page.get_data(as_text=True)


def test_league_widget_shows_the_viewers_cohort_with_zones(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    from datetime import UTC, datetime

    ids = learners(client, tenant, {"old": 1})
    path, _ = embed(client, tenant, player_id=ids["old"], widget="league")
    assert "Leagues are not turned on here." in client.get(path).get_data(as_text=True)
    on = client.put(
        "/api/v1/leagues/config",
        json={"tiers": ["Bronze", "Silver"], "cohort_size": 5, "promote": 1, "demote": 1},
        headers=tenant.auth,
    )
    assert on.status_code == 200, on.get_json()
    assert "Earn XP this week" in client.get(path).get_data(as_text=True)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ingest(
        client,
        tenant,
        [
            event("l1", actor="ann", type="course.completed", at=now),
            event("l2", actor="bob", at=now),
        ],
    )
    path, _ = embed(client, tenant, player_id=player_id(client, tenant, "bob"), widget="league")
    html = client.get(path).get_data(as_text=True)
    assert "Bronze league" in html and "Top 1 move up." in html
    shown = rows(html)
    assert shown[0].startswith("1 ▲ moves up Ann") and shown[1] == "2 Bob you 10"


def test_learner_dashboard_draws_calendar_history_and_courses(
    client: FlaskClient, tenant: TenantHandle
) -> None:
    ids = learners(client, tenant, {"ada": 3})
    ingest(client, tenant, [event("ada-c2", actor="ada", course="course-2")])
    path, _ = embed(client, tenant, player_id=ids["ada"], widget="dashboard")
    html = client.get(path).get_data(as_text=True)
    assert re.search(r'class="heat4"><title>2026-11-20: 40 XP</title>', html)
    assert html.count('class="heat0"') == html.count('class="heat') - 1  # one active day
    assert "Active on 1 of the last" in html
    assert "From 0 to 40 XP." in html  # 30 days of history reach back past 2026-11-20
    assert re.search(r"course-1 <span class=\"muted\">30 XP", html)
    assert re.search(r"course-2 <span class=\"muted\">10 XP", html)
    assert 'role="img"' in html


def test_heat_levels_scale_with_the_busiest_day() -> None:
    from widgets.dashboard import heat_level

    assert [heat_level(xp, 100) for xp in (0, 1, 25, 26, 50, 75, 76, 100)] == [
        0,
        1,
        1,
        2,
        2,
        3,
        4,
        4,
    ]
    assert heat_level(5, 0) == 0
