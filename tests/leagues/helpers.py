"""Factories for league tests: players, ledger rows at chosen times, leagues."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from questline.db import Database
from questline.league_models import League, LeagueMembership
from questline.models import Player, PlayerIdentity, XpLedger

_keys = itertools.count(1)


def make_players(db: Database, tenant_id: int, n: int, prefix: str = "p") -> list[int]:
    with db.session() as session:
        rows = session.execute(
            insert(Player).returning(Player.id),
            [{"tenant_id": tenant_id, "display_name": f"{prefix}{i}"} for i in range(n)],
        )
        ids = sorted(int(r[0]) for r in rows)
        # Each player is known by an external actor id, as players made by events are.
        session.execute(
            insert(PlayerIdentity),
            [
                {"tenant_id": tenant_id, "player_id": pid, "kind": "actor", "value": f"a{pid}"}
                for pid in ids
            ],
        )
        return ids


def add_xp(
    db: Database,
    tenant_id: int,
    awards: dict[int, int],
    at: datetime,
    course: str | None = None,
) -> None:
    """Ledger rows as if applied at ``at`` (``created_at``), one per player."""
    with db.session() as session:
        session.execute(
            insert(XpLedger),
            [
                {
                    "tenant_id": tenant_id,
                    "player_id": pid,
                    "idempotency_key": f"test-{next(_keys)}",
                    "rule_id": "test",
                    "amount": amount,
                    "course": course,
                    "explanation": "test award",
                    "occurred_at": at,
                    "created_at": at,
                }
                for pid, amount in awards.items()
            ],
        )


def enable_league(db: Database, tenant_id: int, scope: str = "tenant", **config: Any) -> int:
    values: dict[str, Any] = {
        "tiers": ["Bronze", "Silver", "Gold"],
        "cohort_size": 5,
        "promote": [2, 2, 2],
        "demote": [1, 1, 1],
    }
    values.update(config)
    with db.session() as session:
        league = League(tenant_id=tenant_id, scope=scope, enabled=True, **values)
        session.add(league)
        session.flush()
        return league.id


def cohorts_of(db: Database, league_id: int, week: str) -> dict[int, list[int]]:
    """{cohort id: sorted players} of one week."""
    out: dict[int, list[int]] = {}
    with db.sessions() as session:
        for pid, cohort in session.execute(
            select(LeagueMembership.player_id, LeagueMembership.cohort_id).where(
                LeagueMembership.league_id == league_id, LeagueMembership.week == week
            )
        ):
            out.setdefault(int(cohort), []).append(int(pid))
    return {c: sorted(p) for c, p in out.items()}
