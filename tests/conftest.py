"""Root fixtures shared by every test area.

``db_url``: a fresh, empty database per test, once on a SQLite file and once on PostgreSQL.
PostgreSQL is ``postgresql://postgres@127.0.0.1:5432/test`` or ``LEADPILOT_TEST_PG_URL``; each
test gets its own schema there (dropped afterwards), so parallel engineers and test runs do
not collide. An unreachable PostgreSQL skips those cases, except under ``CI=true``, where it
fails them: CI must prove the store works on both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
_pg_status: dict[str, str | None] = {}


def pg_url() -> str:
    """The PostgreSQL URL the tests use."""
    return os.environ.get("LEADPILOT_TEST_PG_URL") or DEFAULT_PG_URL


def _engine_url(url: str) -> sa.URL:
    from sync.store.engine import normalise_url

    return normalise_url(url)


def _pg_unreachable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    if "reason" not in _pg_status:
        try:
            engine = sa.create_engine(_engine_url(pg_url()), connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            _pg_status["reason"] = None
        except Exception as exc:  # any driver/connection failure means: not reachable
            _pg_status["reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return _pg_status["reason"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL in the test's temporary directory (the file does not exist yet)."""
    return f"sqlite:///{(tmp_path / 'state' / 'leadpilot.db').as_posix()}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty schema on the test PostgreSQL, dropped after the test."""
    reason = _pg_unreachable()
    if reason is not None:
        message = (
            f"PostgreSQL unreachable at {make_url(pg_url()).render_as_string(hide_password=True)} ({reason})"
        )
        if _in_ci():
            pytest.fail(f"{message}; under CI=true the store must be tested on PostgreSQL")
        pytest.skip(message)
    schema = f"lp_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(_engine_url(pg_url()))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    # search_path through libpq options: every connection of the code under test lands in the schema.
    url = make_url(pg_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database URL, parametrised over a SQLite file and PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


class FakeClock:
    """An injected clock: aware UTC, advanced by hand, never sleeps."""

    def __init__(self, start: datetime = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting Monday 2026-01-05 09:00 UTC; ``clock.advance(minutes=5)``, ``clock.sleep(s)``."""
    return FakeClock()
