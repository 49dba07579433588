"""Many orgs on one store: each org's state, decisions, policy and runs apart (a PostgreSQL schema
per org, a SQLite file per org), created on first use with nothing run by hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from sync.config.settings import Settings
from sync.store import Decision, Store, open_store
from sync.store.engine import normalise_url, org_schema

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def org(db_url: str, name: str, crm: str = "sandbox") -> Settings:
    return Settings(crm=crm, store_url=db_url, _env_file=None).for_org(name)  # type: ignore[call-arg]


@contextmanager
def _two_orgs(db_url: str) -> Iterator[tuple[Store, Store]]:
    acme, globex = open_store(org(db_url, "acme")), open_store(org(db_url, "globex"))
    try:
        yield acme, globex
    finally:
        acme.close()
        globex.close()
        if db_url.startswith("postgres"):  # the fixture drops its own schema; the orgs' sit beside it
            admin = sa.create_engine(normalise_url(db_url))
            with admin.begin() as conn:
                for name in ("acme", "globex"):
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{org_schema(db_url, "org_" + name)}" CASCADE')
            admin.dispose()


@pytest.fixture
def two_orgs(db_url: str) -> Iterator[tuple[Store, Store]]:
    with _two_orgs(db_url) as stores:
        yield stores


@pytest.fixture
def pg_orgs(postgres_url: str) -> Iterator[tuple[Store, Store]]:
    with _two_orgs(postgres_url) as stores:
        yield stores


@pytest.fixture
def sqlite_orgs(sqlite_url: str) -> Iterator[tuple[Store, Store]]:
    with _two_orgs(sqlite_url) as stores:
        yield stores


def _decision(lead_id: str) -> Decision:
    return Decision(lead_id=lead_id, rep_id="r1", policy_name="contextual", policy_version=1, propensity=0.5,
                    decided_at=T0, considered={"r1": None}, context={})


def test_given_two_orgs_on_one_store_then_state_decisions_policy_and_runs_stay_apart(
        two_orgs: tuple[Store, Store]) -> None:
    acme, globex = two_orgs
    acme.set_watermark("leads", T0)
    assert acme.record_decision(_decision("L1"))
    acme.save_policy_state("contextual", {"n": 1}, T0)
    acme.start_run("sync", T0)
    assert globex.get_watermark("leads") is None
    assert globex.lead_state(["L1"]) == {}
    assert globex.load_policy_state("contextual") is None
    # The same lead id in the other org is its own lead with its own decision.
    assert globex.record_decision(_decision("L1"))
    assert not acme.record_decision(_decision("L1"))
    assert acme.latest_policy_version("contextual") == 1 and globex.latest_policy_version("contextual") == 0


def test_given_orgs_on_postgresql_then_each_has_a_schema_and_the_queue_is_shared(
        postgres_url: str, pg_orgs: tuple[Store, Store]) -> None:
    acme, _ = pg_orgs
    base = str(normalise_url(postgres_url).query["options"]).split("=", 1)[1]
    with acme.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT current_schema()").scalar() == f"{base}_org_acme"
        tables = set(conn.execute(sa.text(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema LIKE :p"), {"p": f"{base}%"}).scalars())
    assert {f"{base}_org_acme.leads", f"{base}_org_acme.leadpilot_schema_version",
            f"{base}_org_globex.leads"} <= tables
    assert not any(t.startswith(f"{base}_org_") and ".procrastinate_" in t for t in tables)
    # Opening again is a no-op migration.
    open_store(org(postgres_url, "acme")).close()


def test_given_orgs_on_sqlite_then_each_has_its_own_file(sqlite_orgs: tuple[Store, Store]) -> None:
    acme, globex = sqlite_orgs
    assert acme.engine.url.database != globex.engine.url.database
    assert str(acme.engine.url.database).endswith("leadpilot-acme.db")


def test_given_no_org_then_the_store_is_the_default_one(db_url: str) -> None:
    settings = Settings(crm="sandbox", store_url=db_url, _env_file=None)  # type: ignore[call-arg]
    store = open_store(settings)
    try:
        assert store.engine.url.database == normalise_url(db_url).database
        if db_url.startswith("postgres"):
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT current_schema()").scalar().startswith("lp_test_")
    finally:
        store.close()
