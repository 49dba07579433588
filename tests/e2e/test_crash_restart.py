"""Crash test: SIGKILL the daemon at seeded random moments of its cycles, restart it, check the invariants.

The sandbox runs in its own process (`leadpilot sandbox serve` with faults on) so that it
survives the kills; the simulated world moves on between restarts. At the end, with faults
off, one clean cycle and rewards run, then: every lead is scored, none is lost (nothing
parked), none was assigned twice (one decision per lead, the CRM owner is that decision),
and no reward was applied twice (the policy closed exactly the rewarded assignments and a
replay applies nothing).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import requests

from allocation.ledger import OPEN
from sync.jobs.cycle import run_cycle
from sync.jobs.rewards import run_rewards
from sync.ops.demo import sandbox_settings
from sync.wiring.deps import build_deps

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
KILLS = 20


def _admin(info: dict, method: str, route: str, body: dict | None = None) -> dict:
    resp = requests.request(method, f"{info['admin_url']}/{route}", json=body, verify=info["ca_cert"], timeout=30)
    resp.raise_for_status()
    return resp.json()


def _runs_started(state: Path) -> int:
    """Job runs the daemon has started so far (read straight from its SQLite store)."""
    import sqlite3

    db = state / "leadpilot.db"
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is being created right now
            return 0


def test_given_sigkills_at_random_points_when_restarted_then_nothing_lost_or_doubled(tmp_path: Path) -> None:
    rng = random.Random(20)
    sandbox = subprocess.Popen([sys.executable, "-m", "sync.cli", "sandbox", "serve", "--seed", "5", "--leads", "200",
                                "--faults", "p_429=0.05,p_5xx=0.05"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(sandbox.stdout.readline())  # type: ignore[union-attr]
        state = tmp_path / "state"
        env = {**os.environ, "LEADPILOT_CRM": "hubspot",
               "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
               "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"],
               "LEADPILOT_STATE_DIR": str(state), "LEADPILOT_METRICS_PORT": "0",
               "LEADPILOT_ROUTING__FILE": str(tmp_path / "no-routing.toml"),
               "LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES": "0.01",
               "LEADPILOT_SCHEDULE__REWARDS_INTERVAL_MINUTES": "0.02"}
        from sync.wiring.connector import make_connector

        make_connector(sandbox_settings("hubspot", info, state)).ensure_fields()  # `leadpilot init-crm`
        for _ in range(KILLS):
            _admin(info, "POST", f"advance?days={rng.choice([0.25, 0.5, 1, 2])}")
            started = _runs_started(state)
            daemon = subprocess.Popen([sys.executable, "-m", "sync.cli", "run"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Start-up (imports, model load) takes seconds, more on a busy machine: wait until the
            # daemon has begun a job, then kill it a seeded moment later, anywhere in its cycles.
            deadline = time.monotonic() + 120
            while _runs_started(state) <= started and time.monotonic() < deadline and daemon.poll() is None:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 2.5))
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=30)
        _admin(info, "PUT", "faults", {"p_429": 0.0, "p_5xx": 0.0})
        settings = sandbox_settings("hubspot", info, state)
        deps = build_deps(settings)
        deps.park_base_seconds = 0
        deps.store.park_base = deps.store.park_base * 0  # retry everything parked now
        killed_runs = deps.store.recent_runs(limit=1000, kind="sync")
        # the kills landed inside work: runs were started, and some never finished — each such run
        # was closed as "interrupted" by the next start (none is left "running" forever)
        assert len(killed_runs) >= KILLS // 2 and any(r.status == "interrupted" for r in killed_runs)
        assert not [r for r in killed_runs if r.status == "running"]
        final = run_cycle(deps)
        assert final.ok and final.stopped is None, (final.error, final.stopped)
        run_rewards(deps)

        leads = {lead.id: lead for lead in deps.connector.iter_changed_leads(datetime(2000, 1, 1, tzinfo=UTC))}
        unscored = [lid for lid, lead in leads.items() if lead.stage is None and not lead.written.get("score") and
                    lead.written.get("score") != 0]  # closed leads are never rewritten
        assert unscored == [], (final.counts(), len(leads), [leads[i].written for i in unscored[:3]])
        assert deps.store.list_parked() == []  # none lost
        decisions = deps.store.assignments()
        assert len({a.lead_id for a in decisions}) == len(decisions)  # one decision per lead
        owners = deps.connector.get_owners([a.lead_id for a in decisions])
        assert all(owners[a.lead_id] == a.rep_id for a in decisions if a.written_at is not None)
        truth = {t["lead_id"]: t for t in _admin(info, "GET", "ground-truth")["leads"]}
        assert len(truth) == len(leads)
        rewarded = [a for a in decisions if a.reward_applied_at is not None]
        _, status, _, _ = deps.router.router.ledger.arrays()
        assert int(np.sum(status != OPEN)) == len(rewarded)  # each reward reached the policy once
        assert run_rewards(deps).applied == 0
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=30)
