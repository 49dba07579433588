"""``leadpilot backfill --defer`` with real ``leadpilot worker`` processes on a real PostgreSQL: the
chunks are queued once each, two workers run them (each chunk once), every open lead ends
scored, and ``leadpilot status`` shows the finished plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.salesforce.mapping import DISQUALIFIED_STATUSES
from sandbox.server import SandboxServer
from sync.ops.demo import sandbox_env, sandbox_settings
from sync.store import Store
from sync.store.engine import create_store_engine
from sync.wiring.connector import make_connector
from tests.processes import stop_processes

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def _env(info: dict[str, Any], state: Path, store_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPILOT_") and k != "NOTIFY_SOCKET"}
    return {**env, **sandbox_env("salesforce", info, state), "LEADPILOT_STORE_URL": store_url,
            "LEADPILOT_SALESFORCE__BULK_THRESHOLD": "50",
            # Only the backfill's tasks in this test: the periodic jobs far apart.
            "LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES": "60", "LEADPILOT_SCHEDULE__REWARDS_INTERVAL_MINUTES": "60",
            "LEADPILOT_SCHEDULE__NEW_LEADS_INTERVAL_MINUTES": "0"}


def test_given_two_workers_when_a_backfill_is_deferred_then_each_chunk_runs_once_and_every_open_lead_is_scored(
    tmp_path: Path, postgres_url: str
) -> None:
    pytest.importorskip("procrastinate", reason="the workers' queue: pip install 'leadpilot[workers]'")
    state = tmp_path / "state"
    with SandboxServer(seed=4, leads=0, generated_leads=500) as srv:
        make_connector(sandbox_settings("salesforce", srv.info, state)).ensure_fields()  # `leadpilot init-crm`
        Store.open(postgres_url, crm="salesforce").close()  # the migrations bring the queue's schema
        env = _env(srv.info, state, postgres_url)
        procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        for i in range(2):
            log = tmp_path / f"worker{i}.log"
            with log.open("wb") as out:
                procs.append((subprocess.Popen([sys.executable, "-m", "sync.cli", "worker", "--name", f"w{i}"],
                                               cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), log))
        engine = create_store_engine(postgres_url)
        try:
            done = subprocess.run([sys.executable, "-m", "sync.cli", "backfill", "--defer", "--chunk-leads", "100",
                                   "--batch-leads", "100", "--json"], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=180)
            logs = "\n".join(log.read_text(errors="replace")[-3000:] for _p, log in procs)
            assert done.returncode == 0, done.stderr + logs
            out = json.loads(done.stdout)
            total = out["progress"]["chunks_total"]
            assert out["queued"] == total >= 4 and out["progress"]["complete"], out

            with engine.connect() as conn:
                jobs = list(conn.execute(sa.text(
                    "SELECT args->>'chunk' AS chunk, status, attempts FROM procrastinate_jobs "
                    "WHERE task_name = 'leadpilot.backfill_chunk'")))
            assert sorted(int(j.chunk) for j in jobs) == list(range(total))  # each chunk queued once
            assert {(j.status, j.attempts) for j in jobs} == {("succeeded", 1)}, jobs  # one attempt each
            store = Store.open(postgres_url, crm="salesforce")
            runs = [r for r in store.recent_runs(limit=100, kind="backfill") if r.status == "ok"]
            store.close()
            assert sorted(int(r.counts["chunk"]) for r in runs) == list(range(total))  # each chunk run once
            assert sum(int(r.counts["pulled"]) for r in runs) == 500
            records = srv.store.all("Lead")
            open_ids = {r["Id"] for r in records
                        if not r.get("IsConverted") and r.get("Status") not in DISQUALIFIED_STATUSES}
            assert {r["Id"] for r in records if r.get("LeadPilot_Score__c") is not None} == open_ids

            shown = subprocess.run([sys.executable, "-m", "sync.cli", "status", "--json", "--offline"], cwd=ROOT,
                                   env=env, capture_output=True, text=True, timeout=120)
            backfill = json.loads(shown.stdout)["backfill"]
            assert (backfill["chunks_done"], backfill["chunks_total"], backfill["leads_done"]) == (total, total, 500)
        finally:
            stop_processes(procs)
            engine.dispose()
