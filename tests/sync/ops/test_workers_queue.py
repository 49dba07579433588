"""`leadpilot worker` with real processes on a real PostgreSQL: two workers defer each period's
jobs once, never run one org's jobs side by side, and a worker killed with -9 in the middle of
a job has that job finished by the other (stalled-job recovery on the heartbeat).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox.server import SandboxServer
from sync.store import Store
from sync.store.engine import create_store_engine
from tests.processes import stop_processes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def _query(engine: sa.Engine, sql: str, **params: object) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def _wait(what: str, check, seconds: float = 150.0, procs=()):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for proc, log in procs:
            assert proc.poll() is None, f"worker exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)
    logs = "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-4000:]}" for _p, log in procs)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def test_given_two_workers_when_one_is_killed_mid_job_then_periods_run_once_and_the_job_is_retried(
    tmp_path: Path, postgres_url: str
) -> None:
    pytest.importorskip("procrastinate", reason="the workers' queue: pip install 'leadpilot[workers]'")
    with SandboxServer(seed=6, leads=120) as srv:
        srv.advance(1)
        info = srv.info
        env = {**os.environ, "LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
               "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"],
               "LEADPILOT_STATE_DIR": str(tmp_path / "state"), "LEADPILOT_STORE_URL": postgres_url,
               "LEADPILOT_METRICS_PORT": "0", "LEADPILOT_ROUTING__FILE": str(tmp_path / "no-routing.toml"),
               "LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES": "0.05",  # every 3 s
               "LEADPILOT_SCHEDULE__REWARDS_INTERVAL_MINUTES": "0.1",
               "LEADPILOT_SCHEDULE__NEW_LEADS_INTERVAL_MINUTES": "0"}
        env.pop("NOTIFY_SOCKET", None)
        Store.open(postgres_url, crm="hubspot").close()  # the migrations bring the queue's schema
        procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        for i in range(2):
            log = tmp_path / f"worker{i}.log"
            with log.open("wb") as out:
                procs.append((subprocess.Popen(
                    [sys.executable, "-m", "sync.cli", "worker", "--name", f"w{i}", "--heartbeat-seconds", "1",
                     "--stalled-after-seconds", "5", "--stalled-check-seconds", "2"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), log))
        engine = create_store_engine(postgres_url)
        try:
            # A sync job in the middle of its work (the first one also logs in and loads the model).
            doing = _wait("a sync job running", lambda: _query(
                engine, "SELECT id FROM procrastinate_jobs WHERE task_name = 'leadpilot.sync' AND status = 'doing'"),
                procs=procs)
            job_id = doing[0].id
            started = re.compile(rf"job {job_id} sync .* started in pid (\d+)")

            def runner() -> int | None:
                for _proc, log in procs:
                    found = started.search(log.read_text(errors="replace"))
                    if found:
                        return int(found.group(1))
                return None

            pid = _wait(f"job {job_id}'s worker to log its start", runner, 60, procs)
            [(victim, victim_log)] = [(p, log) for p, log in procs if p.pid == pid]
            [(survivor, survivor_log)] = [(p, log) for p, log in procs if p.pid != pid]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            t0 = time.monotonic()
            _wait(f"job {job_id} finished by the other worker", lambda: _query(
                engine, "SELECT 1 FROM procrastinate_jobs WHERE id = :id AND status = 'succeeded'", id=job_id),
                procs=[(survivor, survivor_log)])
            recovered_in = time.monotonic() - t0
            assert re.search(rf"job {job_id} sync .* started in pid {survivor.pid}", survivor_log.read_text())
            assert "handing it to another worker" in survivor_log.read_text()
            # and the schedule goes on: two more sync periods after the recovery
            done_before = len(_query(engine, "SELECT id FROM procrastinate_jobs WHERE task_name = 'leadpilot.sync' "
                                             "AND status = 'succeeded'"))
            _wait("two more sync periods", lambda: len(_query(
                engine, "SELECT id FROM procrastinate_jobs WHERE task_name = 'leadpilot.sync' AND status = 'succeeded'"))
                >= done_before + 2, procs=[(survivor, survivor_log)])

            # Each period's job deferred once, however many workers ran the periodic deferrer.
            doubled = _query(engine, "SELECT task_name, args->>'timestamp' AS ts, count(*) FROM procrastinate_jobs "
                                     "WHERE task_name LIKE 'leadpilot.%' GROUP BY 1, 2 HAVING count(*) > 1")
            assert doubled == []
            # Never two jobs of the org at once: the finished runs do not overlap.
            store = Store.open(postgres_url, crm="hubspot")
            runs = sorted((r for r in store.recent_runs(limit=1000) if r.finished_at is not None),
                          key=lambda r: r.started_at)
            store.close()
            assert len(runs) >= 3
            assert all(b.started_at >= (a.finished_at or b.started_at) for a, b in zip(runs, runs[1:], strict=False)), [
                (r.kind, r.started_at, r.finished_at) for r in runs]
            assert recovered_in < 120, recovered_in
        finally:
            stop_processes(procs)
            engine.dispose()


def test_the_worker_template_unit_is_hardened_like_the_daemon_unit_and_runs_a_worker() -> None:
    def hardening(path: Path) -> list[str]:
        text = path.read_text(encoding="utf-8")
        return text[text.index("# Hardening"):].splitlines()

    worker = ROOT / "deploy" / "leadpilot-worker@.service"
    assert hardening(worker) == hardening(ROOT / "deploy" / "leadpilot.service")
    text = worker.read_text(encoding="utf-8")
    # each instance its own metrics port: LEADPILOT_METRICS_PORT + its number (tests/sync/ops/test_metrics_ports.py)
    assert "ExecStart=/opt/leadpilot/.venv/bin/leadpilot worker --name %H:%i --metrics-port-offset %i\n" in text
    assert "RestartPreventExitStatus=2" in text and "Restart=on-failure" in text


def test_given_a_sqlite_store_when_a_worker_starts_then_it_says_workers_need_postgresql(tmp_path: Path) -> None:
    env = {**os.environ, "LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": "pat-na1-00000000",
           "LEADPILOT_STATE_DIR": str(tmp_path / "state"), "LEADPILOT_ROUTING__FILE": str(tmp_path / "none.toml")}
    env.pop("LEADPILOT_STORE_URL", None)
    done = subprocess.run([sys.executable, "-m", "sync.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "LEADPILOT_STORE_URL: `leadpilot worker` needs the store on PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr
