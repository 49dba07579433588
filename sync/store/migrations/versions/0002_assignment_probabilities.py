"""Assignments keep the full logged choice distribution over the eligible reps.

Off-policy evaluation then checks support exactly (a rep with logged probability 0 is known
to be 0, not assumed positive) and can say how often the logging policy would have made a
candidate's choice. Rows decided before this revision keep NULL: only the chosen rep's
propensity is known for them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("probabilities", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("probabilities")
