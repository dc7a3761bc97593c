"""Alembic environment: the URL comes from the caller (``questline db upgrade``), not an ini."""

from __future__ import annotations

from alembic import context

from credentials import models as credential_models  # noqa: F401  (issue 9's tables)
from identity import models as identity_models  # noqa: F401  (issue 8's tables)
from lti import models as lti_models  # noqa: F401  (issue 5's tables)
from questline import league_models as league_tables  # noqa: F401  (issue 4's tables)
from questline import (
    models,  # noqa: F401  (registers the tables on Base.metadata)
    rules_models,  # noqa: F401  (issue 3's currency and quest tables)
)
from questline.db import Base, make_engine
from webhooks import models as webhook_models  # noqa: F401  (issue 6's tables)
from widgets import models as widget_models  # noqa: F401  (issue 7's table)

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `questline db upgrade`")
run_migrations_online()
