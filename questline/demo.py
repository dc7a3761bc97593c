"""``questline demo``: a whole Questline on SQLite with Redis emulated in-process.

It creates a tenant, a course rule set and players, then streams sample events through the real
ingest endpoint and pipeline (jobs inline), so what the page shows was computed exactly as in
production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from engine.rules import DEFAULT_RULES
from questline import create_app
from questline.migrate import upgrade
from questline.models import RuleSet
from questline.settings import Settings
from questline.tenants import create_tenant
from workers.context import build_context

DEMO_TENANT = "Demo School"
COURSES = ("algebra-101", "biology-201")
NAMES = (
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Tim",
    "Sophie",
    "Linus",
    "Hedy",
    "John",
    "Karen",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Anita",
    "Guido",
    "Mary",
)


@dataclass(frozen=True)
class Demo:
    app: Flask
    api_key: str
    tenant_id: int
    events: int


def demo_events(count: int, now: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """Plausible activity over the last two weeks: lessons, quizzes, grades, completions."""
    rng = random.Random(seed)
    keen = {name: rng.uniform(0.2, 1.0) for name in NAMES}
    events = []
    for i in range(count):
        name = rng.choices(NAMES, weights=[keen[n] for n in NAMES])[0]
        course = rng.choice(COURSES)
        kind = rng.choices(
            ["session.started", "lesson.completed", "quiz.submitted", "assignment.graded"],
            weights=[3, 5, 3, 1],
        )[0]
        when = now - timedelta(days=rng.randint(0, 13), minutes=rng.randint(0, 600))
        event: dict[str, Any] = {
            "id": f"demo-{i}",
            "type": kind,
            "actor": {
                "id": f"learner-{name.lower()}",
                "name": name,
                "email": f"{name.lower()}@demo.example",
            },
            "object": {"id": f"{course}/unit-{rng.randint(1, 8)}", "type": kind.split(".")[0]},
            "context": {"course": course},
            "occurred_at": when.isoformat(),
        }
        if kind in {"quiz.submitted", "assignment.graded"}:
            score = round(rng.uniform(0.4, 1.0), 2)
            event["result"] = {"score": score, "passed": score >= 0.6}
        events.append(event)
    return events


def build_demo(database: Path, *, events: int = 400) -> Demo:
    """Create the demo database afresh and fill it through the real pipeline."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    settings = Settings(
        database_url=f"sqlite:///{database}",
        redis_url=None,
        redis_prefix="demo",
        log_level="WARNING",
    )
    upgrade(settings.database_url)
    ctx = build_context(settings)
    with ctx.db.session() as session:
        tenant, key = create_tenant(session, DEMO_TENANT, timezone="Europe/London")
        session.add(
            RuleSet(
                tenant_id=tenant.id, course=None, version=1, document=DEFAULT_RULES, active=True
            )
        )
        tenant_id = tenant.id
    app = create_app(settings, context=ctx, demo_tenant=DEMO_TENANT)
    client = app.test_client()
    sample = demo_events(events, datetime.now(UTC))
    for start in range(0, len(sample), 100):
        response = client.post(
            "/api/v1/events",
            json={"events": sample[start : start + 100]},
            headers={"Authorization": f"Bearer {key}"},
        )
        if response.status_code != 202:
            raise RuntimeError(f"demo ingest failed: {response.status_code} {response.get_json()}")
    return Demo(app=app, api_key=key, tenant_id=tenant_id, events=len(sample))
