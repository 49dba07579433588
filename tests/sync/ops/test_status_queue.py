"""``leadpilot status`` on PostgreSQL with workers: the org's jobs per task (waiting, running,
failed, last finished) and the live workers, read from procrastinate's tables, with a real
``leadpilot worker`` process that runs a sync job and leaves a job scheduled for later waiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from sandbox.server import SandboxServer
from sync.ops.demo import sandbox_env, sandbox_settings
from sync.ops.status import queue_status
from sync.store import Store
from sync.store.engine import create_store_engine
from sync.wiring.connector import make_connector

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[3]


def _wait_for(engine: sa.Engine, sql: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    """Poll the queue until ``sql`` returns a row (the worker is a real process; bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sa.text(sql)).first() is not None:
                return
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"the worker did not get there: {sql}\n" + log.read_text(errors="replace")[-3000:])


def test_given_a_worker_when_status_then_the_orgs_queue_per_task_and_the_live_worker_are_shown(
        tmp_path: Path, postgres_url: str) -> None:
    pytest.importorskip("procrastinate", reason="the workers' queue: pip install 'leadpilot[workers]'")
    from sync.ops.workers import build_app

    state = tmp_path / "state"
    with SandboxServer(seed=3, leads=0, generated_leads=20) as srv:
        settings = sandbox_settings("salesforce", srv.info, state, store_url=SecretStr(postgres_url))
        make_connector(settings).ensure_fields()
        Store.open(postgres_url, crm="salesforce").close()  # the migrations bring the queue's schema
        assert queue_status(settings) == {"org": "salesforce", "tasks": {}, "workers": []}
        env: dict[str, Any] = {k: v for k, v in os.environ.items()
                               if not k.startswith("LEADPILOT_") and k != "NOTIFY_SOCKET"}
        env |= {**sandbox_env("salesforce", srv.info, state), "LEADPILOT_STORE_URL": postgres_url,
                "LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES": "60", "LEADPILOT_SCHEDULE__REWARDS_INTERVAL_MINUTES": "60",
                "LEADPILOT_SCHEDULE__NEW_LEADS_INTERVAL_MINUTES": "0"}
        app = build_app(settings)
        with app.open():  # one sync now, one rewards job an hour from now (it waits)
            app.configure_task("leadpilot.sync").defer(timestamp=0, org="salesforce")
            app.configure_task("leadpilot.rewards", schedule_in={"hours": 1}).defer(timestamp=0, org="salesforce")
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "worker", "--name", "w0"], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        engine = create_store_engine(postgres_url)
        try:
            _wait_for(engine, "SELECT 1 FROM procrastinate_jobs WHERE task_name = 'leadpilot.sync' "
                              "AND status = 'succeeded'", proc, log)
            shown = subprocess.run([sys.executable, "-m", "sync.cli", "status", "--json", "--offline"], cwd=ROOT,
                                   env=env, capture_output=True, text=True, timeout=120)
            assert shown.returncode == 0, shown.stderr
            queue = json.loads(shown.stdout)["queue"]
            assert queue["org"] == "salesforce"
            assert queue["tasks"]["leadpilot.rewards"]["waiting"] == 1  # ours, an hour away (a periodic one may run)
            sync = queue["tasks"]["leadpilot.sync"]
            assert (sync["waiting"], sync["running"], sync["failed"]) == (0, 0, 0)
            assert (sync["last_finished"]["status"], sync["last_finished"]["attempts"]) == ("succeeded", 1)
            assert len(queue["workers"]) == 1 and queue["workers"][0]["heartbeat_age_seconds"] >= 0
            text = subprocess.run([sys.executable, "-m", "sync.cli", "status", "--offline"], cwd=ROOT,
                                  env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)
            assert "Job queue (org salesforce)" in text.stdout and "Workers (1)" in text.stdout, text.stdout
            assert "leadpilot.sync" in text.stdout and "succeeded" in text.stdout
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            engine.dispose()
