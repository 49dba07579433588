"""The store under two writers, on SQLite and PostgreSQL: the policy state's compare-and-set,
transactions that deadlock retried, stale "running" runs closed, run errors kept readable."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from sync.jobs.report import cap_error, error_text
from sync.store import LeadState, PolicyConflict, Store
from sync.store.history import process_owner
from sync.store.schema import runs

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url, crm="salesforce")
    yield opened
    opened.close()


# ---------------------------------------------------------------- policy state compare-and-set
def test_given_a_state_saved_by_another_process_when_saving_on_the_old_version_then_conflict_and_nothing_saved(
    store: Store, db_url: str
) -> None:
    assert store.save_policy_state("p", {"n": 1}, T0, expected_version=0) == 1
    other = Store.open(db_url, crm="salesforce")
    try:
        assert other.save_policy_state("p", {"n": 2, "by": "other"}, T0, expected_version=1) == 2
    finally:
        other.close()

    with pytest.raises(PolicyConflict, match="version 2, not 1"):
        store.save_policy_state("p", {"n": 2, "by": "us"}, T0, expected_version=1)

    latest = store.load_policy_state("p")
    assert latest is not None and (latest.version, latest.state["by"]) == (2, "other")
    assert store.latest_policy_version("p") == 2 and store.latest_policy_version("never") == 0


def test_given_a_conflict_inside_a_transaction_then_the_rows_it_covers_roll_back_too(store: Store) -> None:
    store.save_policy_state("p", {"n": 1}, T0, expected_version=0)
    with pytest.raises(PolicyConflict), store.atomic():
        store.upsert_lead_states([LeadState("L1", status="scored")], T0)
        store.save_policy_state("p", {"n": 2}, T0, expected_version=0)
    assert store.lead_state(["L1"]) == {}


def test_given_many_threads_saving_on_the_version_they_loaded_then_each_version_is_saved_once(store: Store) -> None:
    """Every saver that wins saved on the latest version; the losers saved nothing."""
    won: list[int] = []
    lost: list[int] = []

    def saver(i: int) -> None:
        for _ in range(5):
            seen = store.latest_policy_version("p")
            try:
                won.append(store.save_policy_state("p", {"by": i, "on": seen}, T0, expected_version=seen))
            except PolicyConflict:
                lost.append(i)

    threads = [threading.Thread(target=saver, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == list(range(1, len(won) + 1))
    assert len(won) + len(lost) == 20
    for version, _ in store.policy_versions("p"):
        saved = store.load_policy_state("p", version)
        assert saved is not None and saved.state["on"] == version - 1  # saved on its predecessor


# ---------------------------------------------------------------- transactions that deadlock are retried
def test_given_two_writers_updating_overlapping_leads_in_opposite_orders_then_no_deadlock_escapes(
    store: Store, db_url: str
) -> None:
    ids = [f"L{i:03d}" for i in range(200)]
    store.upsert_lead_states([LeadState(i, status="scored") for i in ids], T0)
    other = Store.open(db_url, crm="salesforce")
    errors: list[BaseException] = []

    def writer(s: Store, order: list[str]) -> None:
        try:
            for round_ in range(10):
                now = T0 + timedelta(minutes=round_)
                s.mark_written(order, now)
                s.upsert_lead_states([LeadState(i, status="scored") for i in order], now)
                s.set_status(order, "scored", now)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(store, ids)),
               threading.Thread(target=writer, args=(other, ids[::-1]))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert errors == []
    assert {s.status for s in store.lead_state(ids).values()} == {"scored"}


def test_given_a_deadlock_when_retrying_then_the_work_runs_again_a_bounded_number_of_times(store: Store) -> None:
    class Deadlock(Exception):
        sqlstate = "40P01"

    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sa.exc.OperationalError("UPDATE leads ...", {}, Deadlock("deadlock detected"))
        return "done"

    assert store.retrying(work) == "done" and len(calls) == 3

    calls.clear()

    def always() -> None:
        calls.append(1)
        raise sa.exc.OperationalError("UPDATE leads ...", {}, Deadlock("deadlock detected"))

    with pytest.raises(sa.exc.OperationalError):
        store.retrying(always, attempts=4)
    assert len(calls) == 4

    calls.clear()

    def broken() -> None:
        calls.append(1)
        raise sa.exc.IntegrityError("INSERT ...", {}, ValueError("duplicate key"))

    with pytest.raises(sa.exc.IntegrityError):
        store.retrying(broken)
    assert len(calls) == 1  # not transient: never retried


# ---------------------------------------------------------------- stale runs
def _owner_of_a_dead_process() -> str:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    host = process_owner().split(":")[0]
    return f"{host}:{int(child.stdout)}:deadbeef"


def test_given_runs_left_running_by_dead_processes_when_started_then_closed_as_interrupted(store: Store) -> None:
    ours = store.start_run("sync", T0)
    killed = store.start_run("sync", T0)
    old_life = store.start_run("rewards", T0)  # our pid, an earlier life (PID 1 in a restarted container)
    elsewhere_old = store.start_run("sync", T0 - timedelta(days=1))
    elsewhere_new = store.start_run("sync", T0)
    with store.engine.begin() as conn:
        host = process_owner().split(":")[0]
        for run_id, owner in ((killed, _owner_of_a_dead_process()), (old_life, f"{host}:{os.getpid()}:0ld1ife0"),
                              (elsewhere_old, "other-host:12:abc"), (elsewhere_new, "other-host:13:abc")):
            conn.execute(runs.update().where(runs.c.id == run_id).values(owner=owner))

    closed = store.close_stale_runs(T0 + timedelta(minutes=5))

    assert sorted(closed) == sorted([killed, old_life, elsewhere_old])
    by_id = {r.id: r for r in store.recent_runs(limit=10)}
    assert by_id[ours].status == "running" and by_id[elsewhere_new].status == "running"
    for run_id in closed:
        assert by_id[run_id].status == "interrupted"
        assert by_id[run_id].finished_at == T0 + timedelta(minutes=5)
        assert "killed or crashed" in (by_id[run_id].errors or "")
    assert store.close_stale_runs(T0 + timedelta(minutes=6)) == []


# ---------------------------------------------------------------- readable run errors
def test_given_a_database_error_with_hundreds_of_ids_then_the_run_error_is_short_and_counts_them(
    store: Store,
) -> None:
    ids = ", ".join(f"'00Q{i:012d}'" for i in range(400))

    class DeadlockDetected(Exception):
        pass

    exc = sa.exc.OperationalError(f"UPDATE leads SET status=%(status)s WHERE lead_id IN ({ids})", {"x": 1},
                                  DeadlockDetected("deadlock detected\nDETAIL: Process 12 waits for ShareLock"))
    text = error_text(exc)
    assert text == "DeadlockDetected: deadlock detected (state store)"

    generic = cap_error(f"write failed for leads {ids}: UNABLE_TO_LOCK_ROW")
    assert generic == "write failed for leads (400 items): UNABLE_TO_LOCK_ROW"
    assert len(cap_error("x" * 5000)) == 500

    run_id = store.start_run("sync", T0)
    store.finish_run(run_id, T0, status="failed", errors="y" * 6000)
    stored = store.recent_runs(limit=1)[0].errors or ""
    assert len(stored) <= 1000 and stored.endswith("(6000 characters in all)")
