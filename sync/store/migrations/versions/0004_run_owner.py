"""Runs name the process that runs them (``host:pid``).

A ``kill -9`` leaves its run "running" forever; at the next start such rows are closed as
"interrupted" when their process is gone, and a row of a live process (another leadpilot
on the same store) is left alone. Rows from before this revision keep NULL and are judged
by their age.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owner")
