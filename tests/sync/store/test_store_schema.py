"""The store's schema: migrated from an empty database, idempotent on a second start, and in
step with ``sync.store.schema`` (a table change without a migration fails here)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sync.store import Store, StoreError
from sync.store.engine import VERSION_TABLE, alembic_config, create_store_engine, current_revision, upgrade
from sync.store.schema import metadata

TABLES = {"watermarks", "leads", "assignments", "policy_states", "runs", "models"}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_given_an_empty_database_when_opened_then_every_table_exists_at_head(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        tables = set(sa.inspect(store.engine).get_table_names())
        assert tables >= TABLES | {VERSION_TABLE}
        assert current_revision(store.engine) == _head()
    finally:
        store.close()


def test_given_a_migrated_database_when_opened_again_then_nothing_changes_and_data_survives(
    db_url: str,
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = Store.open(db_url, crm="hubspot")
    first.set_watermark("leads", now)
    first.close()

    second = Store.open(db_url, crm="hubspot")
    try:
        assert current_revision(second.engine) == _head()
        assert second.get_watermark("leads") == now
        with second.engine.connect() as conn:
            versions = conn.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar()
        assert versions == 1
    finally:
        second.close()


def test_given_the_migrated_schema_when_compared_with_the_code_then_they_match(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            diff = [d for d in compare_metadata(context, metadata) if not _is_version_table(d)]
        assert diff == []
    finally:
        store.close()


def _is_version_table(diff: object) -> bool:
    """Alembic's own table, or the job queue's (procrastinate's schema, revision 0005, PostgreSQL)."""
    item = diff[1] if isinstance(diff, tuple) and len(diff) > 1 else None
    table = getattr(item, "table", item)  # an index names its table
    name = getattr(table, "name", None)
    return name == VERSION_TABLE or str(name).startswith("procrastinate_")


def test_given_a_sqlite_store_then_it_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    ["mysql://user@host/db", "not a url at all"],
)
def test_given_an_unsupported_url_when_opened_then_a_clear_store_error(url: str) -> None:
    with pytest.raises(StoreError, match=r"sqlite:///"):
        Store.open(url)


def test_given_a_url_with_a_password_then_repr_and_errors_hide_it(tmp_path: object) -> None:
    with pytest.raises(StoreError) as info:
        Store.open("postgresql://lp:hunter2@127.0.0.1:1/none?connect_timeout=1")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_given_a_store_at_revision_0001_with_decisions_when_opened_then_upgraded_and_rows_kept(db_url: str) -> None:
    engine = create_store_engine(db_url)
    upgrade(engine, "0001")
    decided = datetime(2026, 1, 5, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO assignments (crm, lead_id, rep_id, policy_name, policy_version, propensity, considered, context, decided_at, shadow)"
                " VALUES ('salesforce', 'L1', 'r1', 'contextual', 1, 0.4, '{\"r1\": null}', '{}', :t, false)"
            ),
            {"t": decided},
        )
    engine.dispose()
    store = Store.open(db_url, crm="salesforce")
    try:
        assert current_revision(store.engine) == _head()
        (row,) = store.assignments(["L1"])
        assert (row.rep_id, row.propensity, row.probabilities) == ("r1", 0.4, None)
    finally:
        store.close()
