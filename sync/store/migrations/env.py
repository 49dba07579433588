"""Alembic environment for leadpilot's state store.

Run programmatically by ``sync.store.engine.upgrade`` (which hands over its own connection in
``config.attributes["connection"]``), or by the ``alembic`` command line with
``-x url=...`` / ``sqlalchemy.url`` for authoring new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from sync.store.engine import VERSION_TABLE, create_store_engine
from sync.store.schema import metadata

config = context.config


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.get_main_option("version_table") or VERSION_TABLE,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database URL: alembic -x url=sqlite:///state/leadpilot.db ...")
    engine = create_store_engine(url)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
