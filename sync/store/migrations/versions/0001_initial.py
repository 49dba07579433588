"""Initial state store: watermarks, leads, assignments, policy states, runs, models.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Migrations are frozen: they spell the storage types out instead of importing the schema module.
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watermarks",
        sa.Column("crm", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("value", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("crm", "stream", name="pk_watermarks"),
    )
    op.create_table(
        "leads",
        sa.Column("crm", sa.String(32), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("modstamp", TS, nullable=True),
        sa.Column("input_hash", sa.String(64), nullable=True),
        sa.Column("text_hash", sa.String(64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("grade", sa.String(4), nullable=True),
        sa.Column("opportunity", sa.Boolean(), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("parked_until", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("crm", "lead_id", name="pk_leads"),
        sa.CheckConstraint(
            "status IN ('pending', 'scored', 'written', 'parked', 'skipped')", name="ck_leads_status"
        ),
    )
    op.create_index("ix_leads_crm_status_parked_until", "leads", ["crm", "status", "parked_until"])
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("crm", sa.String(32), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("rep_id", sa.String(64), nullable=True),
        sa.Column("policy_name", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("propensity", sa.Float(), nullable=False),
        sa.Column("considered", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.Column("written_at", TS, nullable=True),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=True),
        sa.Column("outcome_at", TS, nullable=True),
        sa.Column("reward_applied_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_assignments"),
        sa.UniqueConstraint("crm", "lead_id", name="uq_assignments_crm_lead_id"),
        sa.CheckConstraint("outcome IN ('won', 'lost')", name="ck_assignments_outcome"),
    )
    op.create_index("ix_assignments_crm_rep_id_outcome", "assignments", ["crm", "rep_id", "outcome"])
    op.create_index("ix_assignments_crm_written_at", "assignments", ["crm", "written_at"])
    op.create_table(
        "policy_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("saved_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_states"),
        sa.UniqueConstraint("name", "version", name="uq_policy_states_name_version"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("api_calls", sa.JSON(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_kind_started_at", "runs", ["kind", "started_at"])
    op.create_table(
        "models",
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status_changed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_models"),
        sa.CheckConstraint("status IN ('champion', 'challenger', 'retired')", name="ck_models_status"),
    )


def downgrade() -> None:
    for table in ("models", "runs", "policy_states", "assignments", "leads", "watermarks"):
        op.drop_table(table)
