"""A lead may be decided again: queued leads drain, untouched leads are re-routed.

The unique key on (crm, lead_id) becomes a partial unique index over the decisions in effect
(``superseded_at IS NULL``): the log keeps every decision (the queued one with its exclusions,
the one that gave the lead a rep with its propensity), and a lead still has at most one
decision in effect — the one its reward belongs to. ``lead_created_at`` (the lead's creation
in the CRM) makes speed to lead measurable: ``written_at - lead_created_at``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Migrations are frozen: they spell the storage types out instead of importing the schema module.
TS = sa.DateTime(timezone=True)
EFFECTIVE = sa.text("superseded_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_constraint("uq_assignments_crm_lead_id", type_="unique")
        batch.add_column(sa.Column("lead_created_at", TS, nullable=True))
        batch.add_column(sa.Column("superseded_at", TS, nullable=True))
        batch.add_column(sa.Column("superseded_reason", sa.String(64), nullable=True))
    op.create_index("ix_assignments_crm_lead_id", "assignments", ["crm", "lead_id"])
    op.create_index("uq_assignments_effective", "assignments", ["crm", "lead_id"], unique=True,
                    sqlite_where=EFFECTIVE, postgresql_where=EFFECTIVE)


def downgrade() -> None:
    op.drop_index("uq_assignments_effective", table_name="assignments")
    op.drop_index("ix_assignments_crm_lead_id", table_name="assignments")
    op.execute("DELETE FROM assignments WHERE superseded_at IS NOT NULL")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("superseded_reason")
        batch.drop_column("superseded_at")
        batch.drop_column("lead_created_at")
        batch.create_unique_constraint("uq_assignments_crm_lead_id", ["crm", "lead_id"])
