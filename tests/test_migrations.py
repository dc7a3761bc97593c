"""The Alembic history builds exactly the schema the models declare, on PostgreSQL and SQLite,
and has one head (the feature branches are merged)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from credentials import models as _credentials  # noqa: F401  (issue 9)
from identity import models as _identity  # noqa: F401  (issue 8)
from lti import models as _lti  # noqa: F401  (registers tables)
from questline import league_models as _leagues  # noqa: F401
from questline import models as _core  # noqa: F401
from questline import rules_models as _rules  # noqa: F401  (issue 3)
from questline.db import Base, make_engine
from questline.migrate import alembic_config, upgrade
from webhooks import models as _webhooks  # noqa: F401
from widgets import models as _widgets  # noqa: F401  (issue 7)


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == ["0200"]


def test_postgres_schema_matches_models(pg_engine: Engine) -> None:
    assert _drift(pg_engine) == []


def test_sqlite_schema_matches_models(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        assert _drift(engine) == []
    finally:
        engine.dispose()
