"""The job queue of `leadpilot worker`: procrastinate's tables, on PostgreSQL only.

Workers (``sync.ops.workers``) keep their jobs in the store's own PostgreSQL, so the queue's
schema is part of the store's migrations: a fresh database needs nothing run by hand. The SQL
is procrastinate 3.10's ``schema.sql`` (MIT licence), frozen beside the migrations like every
revision here; a later procrastinate that changes its schema comes with a revision applying
its own migration files. A SQLite store has no queue (``leadpilot run`` is the embedded mode).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import re
from pathlib import Path

from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# sync.store.engine.ORG_SCHEMA_ATTRIBUTE, spelled out: a migration stays as it was written.
ORG_SCHEMA_ATTRIBUTE = "leadpilot_org_schema"
SCHEMA = Path(__file__).resolve().parents[1] / "procrastinate_3_10_schema.sql"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or context.config.attributes.get(ORG_SCHEMA_ATTRIBUTE):
        return  # an org's schema: the orgs share one queue, in the default schema
    # The DBAPI cursor without parameters: the SQL's own '%' (in RAISE messages) stays as it is.
    cursor = bind.connection.cursor()
    try:
        cursor.execute(SCHEMA.read_text(encoding="utf-8"))
    finally:
        cursor.close()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or context.config.attributes.get(ORG_SCHEMA_ATTRIBUTE):
        return
    sql = SCHEMA.read_text(encoding="utf-8")
    for table in re.findall(r"^CREATE TABLE (\w+)", sql, flags=re.MULTILINE):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for function in re.findall(r"^CREATE FUNCTION (\w+)\(", sql, flags=re.MULTILINE):
        op.execute(f"DROP FUNCTION IF EXISTS {function} CASCADE")
    for type_ in re.findall(r"^CREATE TYPE (\w+)", sql, flags=re.MULTILINE):
        op.execute(f"DROP TYPE IF EXISTS {type_} CASCADE")
