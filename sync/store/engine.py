"""Engine creation and schema migration for the state store (SQLite file or PostgreSQL).

Kept apart from ``sync.store`` so that the store's API reads on its own.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Our own version table name: a PostgreSQL database may be shared with other Alembic users.
VERSION_TABLE = "leadpilot_schema_version"
# Write transactions on SQLite take the write lock up front (BEGIN IMMEDIATE): a deferred
# transaction that reads and then writes can fail with SQLITE_BUSY without waiting.
WRITE_OPTION = "leadpilot_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The Alembic config attribute naming an org's schema (None: the default one; see ``upgrade``).
ORG_SCHEMA_ATTRIBUTE = "leadpilot_org_schema"
# Any constant: serialises concurrent `Store.open` migrations on one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x1EAD_9170


class StoreError(RuntimeError):
    """The state store cannot be opened or used as configured."""


# SQLSTATEs worth retrying the whole transaction for: deadlock_detected, serialization_failure,
# lock_not_available. The database rolled the transaction back; running it again is safe.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
_SQLITE_TRANSIENT = ("database is locked", "database table is locked")


def is_transient(exc: BaseException) -> bool:
    """True for a deadlock, serialization failure or lock timeout: retry the transaction."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in TRANSIENT_SQLSTATES:
        return True
    return isinstance(exc, sa.exc.OperationalError) and any(m in str(orig) for m in _SQLITE_TRANSIENT)


def normalise_url(url: str | URL) -> URL:
    """Parse a store URL, choosing an installed PostgreSQL driver for a bare ``postgresql://``."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            "store URL is not a database URL; e.g. sqlite:///state/leadpilot.db or "
            "postgresql://user@host:5432/leadpilot"
        ) from exc
    if parsed.drivername in ("postgres", "postgresql"):
        # psycopg2 is the driver the store is tested with (the dev extras install psycopg2-binary);
        # psycopg 3, which the job queue (procrastinate, `leadpilot worker`) brings along, serves
        # the store only where psycopg2 is absent.
        driver = "psycopg2" if importlib.util.find_spec("psycopg2") else "psycopg"
        parsed = parsed.set(drivername=f"postgresql+{driver}")
    return parsed


def org_schema(url: str | URL, org_schema_name: str) -> str:
    """The PostgreSQL schema of an org's tables on the store at ``url``: ``org_schema_name``, or, when
    the URL sets a search path (``?options=-csearch_path=lp``: a deployment apart in one database),
    that schema's name joined to it (``lp_org_acme``), so two deployments' orgs stay apart too."""
    options = str(normalise_url(url).query.get("options", ""))
    match = re.search(r"-c\s*search_path=([A-Za-z_][A-Za-z0-9_]*)", options)
    return f"{match.group(1)}_{org_schema_name}" if match else org_schema_name


def store_schema(url: str, org_schema_name: str | None) -> str | None:
    """The schema to open the store at ``url`` in for an org (``Settings.store_schema``): its
    ``org_schema`` on PostgreSQL; None for the default schema and on SQLite (a file per org)."""
    return org_schema(url, org_schema_name) if org_schema_name and url.startswith("postgres") else None


def create_store_engine(url: str | URL, schema: str | None = None) -> Engine:
    """An Engine for ``url``: SQLite with WAL and a busy timeout, or PostgreSQL.

    ``schema`` (PostgreSQL): the schema every unqualified name means — an org's own tables, its
    Alembic version table included (``sync.config.orgs``). Ignored on SQLite (an org has a file)."""
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if schema is None:
            return sa.create_engine(parsed, pool_pre_ping=True)
        # libpq's options: the server sets the search path as the session starts, before any query
        # (an org's schema only: its tables never resolve to another org's or to the shared ones).
        options = " ".join(filter(None, (str(parsed.query.get("options", "")), f"-csearch_path={schema}")))
        return sa.create_engine(parsed.difference_update_query(["options"]), pool_pre_ping=True,
                                connect_args={"options": options})
    if backend != "sqlite":
        raise StoreError(
            f"unsupported store database {backend!r}; use sqlite:///path/to/leadpilot.db or postgresql://..."
        )
    database = parsed.database or ""
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    if database in ("", ":memory:"):
        # One shared connection, or every connection would see its own empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, **kwargs)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own; we do below
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def alembic_config(url: str = "") -> Config:
    """The Alembic configuration, built in code (no alembic.ini needed at run time)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("version_table", VERSION_TABLE)
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head", schema: str | None = None) -> None:
    """Apply the migrations up to ``revision`` in one transaction (a no-op when up to date).

    ``schema`` (PostgreSQL, the engine's search path): an org's schema, created when missing; its
    migrations leave out the job queue's tables, which all orgs share in the default schema."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                if schema is not None:
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            config = alembic_config()
            config.attributes["connection"] = conn
            config.attributes[ORG_SCHEMA_ATTRIBUTE] = schema
            command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
