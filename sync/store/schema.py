"""Tables of the state store (SQLAlchemy Core), shared by ``sync.store`` and the Alembic migrations.

The migrations under ``sync/store/migrations/versions`` create exactly this schema; a test compares
the two (Alembic autogenerate) so that a change here without a migration fails CI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

LEAD_STATUSES = ("pending", "scored", "written", "parked", "skipped")
MODEL_STATUSES = ("champion", "challenger", "retired")
OUTCOMES = ("won", "lost")

# Stable constraint names so that migrations can refer to them on both databases.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out, on every database.

    SQLite has no time zone type: values are stored as naive UTC and made aware on the
    way out. Naive datetimes are refused on the way in (they are ambiguous).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _status_check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=name)


watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("crm", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("value", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

leads = sa.Table(
    "leads",
    metadata,
    sa.Column("crm", sa.String(32), primary_key=True),
    sa.Column("lead_id", sa.String(64), primary_key=True),
    sa.Column("modstamp", UTCDateTime(), nullable=True),
    sa.Column("input_hash", sa.String(64), nullable=True),
    sa.Column("text_hash", sa.String(64), nullable=True),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("grade", sa.String(4), nullable=True),
    sa.Column("opportunity", sa.Boolean(), nullable=True),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("parked_until", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    _status_check("status", LEAD_STATUSES, "status"),
    sa.Index("ix_leads_crm_status_parked_until", "crm", "status", "parked_until"),
)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("crm", sa.String(32), nullable=False),
    sa.Column("lead_id", sa.String(64), nullable=False),
    sa.Column("rep_id", sa.String(64), nullable=True),  # NULL: the configured fallback
    sa.Column("policy_name", sa.String(64), nullable=False),
    sa.Column("policy_version", sa.Integer(), nullable=False),
    sa.Column("propensity", sa.Float(), nullable=False),
    sa.Column("considered", sa.JSON(), nullable=False),
    sa.Column("context", sa.JSON(), nullable=False),
    sa.Column("probabilities", sa.JSON(), nullable=True),  # logged distribution; NULL before 0002
    sa.Column("decided_at", UTCDateTime(), nullable=False),
    sa.Column("written_at", UTCDateTime(), nullable=True),
    sa.Column("shadow", sa.Boolean(), nullable=False),
    sa.Column("outcome", sa.String(8), nullable=True),
    sa.Column("outcome_at", UTCDateTime(), nullable=True),
    sa.Column("reward_applied_at", UTCDateTime(), nullable=True),
    # When the lead was created in the CRM: speed to lead is written_at - lead_created_at.
    sa.Column("lead_created_at", UTCDateTime(), nullable=True),
    # A decision replaced by a later one (a queued lead re-decided, an untouched lead re-routed)
    # or closed without one (a human took the queued lead): when and why. NULL: in effect.
    sa.Column("superseded_at", UTCDateTime(), nullable=True),
    sa.Column("superseded_reason", sa.String(64), nullable=True),
    _status_check("outcome", OUTCOMES, "outcome"),
    sa.Index("ix_assignments_crm_rep_id_outcome", "crm", "rep_id", "outcome"),
    sa.Index("ix_assignments_crm_written_at", "crm", "written_at"),
    # The invariant "a lead has one decision in effect" lives in the database, not only in
    # code: superseded decisions stay in the log, at most one per lead is not superseded.
    sa.Index("uq_assignments_effective", "crm", "lead_id", unique=True,
             sqlite_where=sa.text("superseded_at IS NULL"), postgresql_where=sa.text("superseded_at IS NULL")),
    sa.Index("ix_assignments_crm_lead_id", "crm", "lead_id"),
)

policy_states = sa.Table(
    "policy_states",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("state", sa.JSON(), nullable=False),
    sa.Column("saved_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("name", "version"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("counts", sa.JSON(), nullable=False),
    sa.Column("api_calls", sa.JSON(), nullable=False),
    sa.Column("errors", sa.Text(), nullable=True),
    sa.Column("owner", sa.String(128), nullable=True),  # host:pid of the process running it (0004)
    sa.Index("ix_runs_kind_started_at", "kind", "started_at"),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text(), nullable=False),
    sa.Column("metrics", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("status_changed_at", UTCDateTime(), nullable=False),
    _status_check("status", MODEL_STATUSES, "status"),
)
