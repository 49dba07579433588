"""Stalled-job recovery does not wait for a free worker: a real worker busy on a long job still
hands a dead worker's job back to the queue within ``stalled_after_seconds`` plus one check
period, measured on the database's clock.

The dead worker is what a ``kill -9`` leaves in the queue's tables (a worker row whose heartbeat
stopped, its job in ``doing``); the end-to-end kill of a real worker process is in
test_workers_queue.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from sync.store import Store
from sync.store.engine import create_store_engine

pytestmark = [pytest.mark.integration]


def _one(engine: sa.Engine, sql: str, **params: object) -> Any:
    with engine.begin() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def test_given_the_only_live_worker_busy_on_a_long_job_when_a_worker_dies_then_its_job_is_retried_within_the_bound(
    postgres_url: str,
) -> None:
    procrastinate = pytest.importorskip("procrastinate", reason="the workers' queue: pip install 'leadpilot[workers]'")
    from sync.ops.workers import WorkerOptions, queue_conninfo, serve_worker

    Store.open(postgres_url, crm="hubspot").close()  # the migrations bring the queue's schema
    conninfo = queue_conninfo(postgres_url)
    options = WorkerOptions(heartbeat_seconds=0.5, stalled_after_seconds=2.0, stalled_check_seconds=1)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    release = threading.Event()
    ran: list[str] = []

    @app.task(name="test.long_job")
    def long_job() -> None:  # busy until the test has seen the recovery
        ran.append("long")
        release.wait(timeout=30)

    @app.task(name="test.victim_job")
    def victim_job() -> None:
        ran.append("victim")

    engine = create_store_engine(postgres_url)
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        async with app.open_async():
            await serve_worker(app, conninfo, options, "survivor")

    worker = loop.create_task(serve())

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # stopped by the test
            loop.run_until_complete(worker)

    thread = threading.Thread(target=run, daemon=True)
    try:
        with app.open():
            victim = app.configure_task("test.victim_job").defer()
            # What a worker killed with -9 in the middle of its job leaves: its job in `doing`
            # under its id, and a heartbeat that stopped (now, by the database's clock).
            dead = _one(engine, "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()) RETURNING id")
            _one(engine, "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = :id "
                         "RETURNING id", w=dead, id=victim)
            died_at = _one(engine, "SELECT last_heartbeat FROM procrastinate_workers WHERE id = :w", w=dead)
            long = app.configure_task("test.long_job").defer()
        thread.start()
        deadline = time.monotonic() + 15
        retried_at = None
        while retried_at is None and time.monotonic() < deadline:
            retried_at = _one(engine, "SELECT max(at) FROM procrastinate_events WHERE job_id = :id "
                                      "AND type = 'deferred_for_retry'", id=victim)
            time.sleep(0.1)
        assert retried_at is not None, "the dead worker's job was never handed back"
        # The survivor was busy the whole time: its long job still runs.
        assert _one(engine, "SELECT status::text FROM procrastinate_jobs WHERE id = :id", id=long) == "doing"
        assert ran == ["long"]
        waited = (retried_at - died_at).total_seconds()
        bound = options.stalled_after_seconds + options.stalled_check_seconds
        assert options.stalled_after_seconds <= waited <= bound + 0.5, (waited, bound)

        release.set()  # the survivor then runs the retried job
        while _one(engine, "SELECT status::text FROM procrastinate_jobs WHERE id = :id", id=victim) != "succeeded":
            assert time.monotonic() < deadline + 10, "the retried job did not run"
            time.sleep(0.1)
        assert ran == ["long", "victim"]
    finally:
        release.set()
        loop.call_soon_threadsafe(worker.cancel)
        thread.join(timeout=15)
        if not thread.is_alive():
            loop.close()
        engine.dispose()
