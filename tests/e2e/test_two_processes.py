"""Two leadpilot processes on one store at the same moment (a ``sync --once`` from cron beside
the service), on SQLite and PostgreSQL: after every round the saved policy state's ledger
equals the decisions table exactly, no lead is decided twice, and no cycle failed (no
deadlock, no lost race that escaped).

Both processes are real (``race_worker.py``), wired against one sandbox over HTTPS; each
round the world moves on and both run a sync cycle and a rewards run at the same instant.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox.server import SandboxServer
from sync.store import Store
from sync.wiring.routing import ledger_divergence

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORKER = Path(__file__).resolve().parent / "race_worker.py"
ROUNDS = 20
DAYS_PER_ROUND = 0.625
CRM = "salesforce"


def _start(config: dict) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(WORKER), json.dumps(config)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=WORKER.parents[2])
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert json.loads(line) == {"ready": True}, line
    return proc


def test_given_two_processes_on_one_store_when_cycles_race_then_the_policy_ledger_equals_the_decisions(
    db_url: str, tmp_path: Path
) -> None:
    srv = SandboxServer(seed=7, leads=40, scenario="skilled").start()
    srv.world.arrivals_per_day = 24.0  # ~15 new leads a round, over ~12 simulated days: outcomes arrive
    procs: list[subprocess.Popen[str]] = []
    try:
        from sync.ops.demo import sandbox_settings
        from sync.wiring.connector import make_connector

        make_connector(sandbox_settings(CRM, srv.info, tmp_path)).ensure_fields()  # `leadpilot init-crm`
        for i in range(2):
            procs.append(_start({"crm": CRM, "info": srv.info, "state_dir": str(tmp_path / f"p{i}"),
                                 "store_url": db_url, "now": srv.store.clock.now().isoformat()}))
        store = Store.open(db_url, crm=CRM)
        name = "routing:contextual"
        assigned = applied = 0
        for round_ in range(ROUNDS):
            srv.advance(DAYS_PER_ROUND)
            now = srv.store.clock.now() + timedelta(seconds=1)
            for p in procs:  # both at the same instant
                p.stdin.write(now.isoformat() + "\n")  # type: ignore[union-attr]
                p.stdin.flush()  # type: ignore[union-attr]
            results = [json.loads(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
            for r in results:
                assert r["cycle"]["error"] is None and r["rewards"]["error"] is None, (round_, r)
                assigned += r["cycle"]["assigned"]
                applied += r["rewards"]["applied"] + r["cycle"]["disqualified"]
            decisions = store.assignments(effective=True)  # one in effect per lead (a queued one may be superseded)
            assert len({a.lead_id for a in decisions}) == len(decisions), round_
            assert ledger_divergence(store, name, decisions) == [], round_
        assert assigned == len(store.assignments()) > 100  # every decision is one process's, none lost
        assert applied > 0  # outcomes reached the policy while the two raced
        lost = sum(r["lost_races"] for r in results)
        assert lost > 0  # the two really raced: losers redid their work on the winner's state
        runs = store.recent_runs(limit=1000)
        assert {r.status for r in runs} == {"ok"}, [r.errors for r in runs if r.status != "ok"][:3]
        store.close()
    finally:
        for p in procs:
            p.stdin.close()  # type: ignore[union-attr]
            p.wait(timeout=60)
        srv.stop()
