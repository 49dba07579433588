"""Soak: the daemon for weeks of simulated time against a faulty, sometimes hung sandbox, killed
with ``kill -9`` at seeded moments, then run for a while undisturbed; at the end the routing
state still equals the decisions, nothing is lost or doubled, no run is left "running", and
the daemon's memory stayed flat.

The sandbox runs in its own process (``leadpilot sandbox serve`` with 429s and 503s) so that it
survives the kills; each round moves the world on one or two days, and some rounds hold the
next responses longer than the client's read timeout (a hung server).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sync.jobs.cycle import run_cycle
from sync.jobs.rewards import run_rewards
from sync.ops.demo import sandbox_settings
from sync.wiring.deps import build_deps
from sync.wiring.routing import ledger_divergence

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
KILLS = 12
CALM_SAMPLES = 10


def _admin(info: dict, method: str, route: str, body: dict | None = None) -> dict:
    resp = requests.request(method, f"{info['admin_url']}/{route}", json=body, verify=info["ca_cert"], timeout=30)
    resp.raise_for_status()
    return resp.json()


def _runs(state: Path) -> list[tuple[str, str]]:
    """(kind, status) of every run so far, read straight from the daemon's SQLite store."""
    import sqlite3

    db = state / "leadpilot.db"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return [(str(k), str(s)) for k, s in conn.execute("SELECT kind, status FROM runs")]
        except sqlite3.OperationalError:  # the schema is being created right now
            return []


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _start_daemon(env: dict[str, str], state: Path) -> subprocess.Popen[bytes]:
    started = len(_runs(state))
    daemon = subprocess.Popen([sys.executable, "-m", "sync.cli", "run"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # start-up (imports, first job) takes seconds on a busy machine
    while len(_runs(state)) <= started and time.monotonic() < deadline and daemon.poll() is None:
        time.sleep(0.05)
    assert daemon.poll() is None, f"the daemon exited with {daemon.returncode} at start-up"
    return daemon


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="memory is read from /proc")
def test_given_weeks_of_faults_hangs_and_sigkills_then_state_equals_decisions_and_memory_is_flat(
    tmp_path: Path,
) -> None:
    rng = random.Random(17)
    sandbox = subprocess.Popen([sys.executable, "-m", "sync.cli", "sandbox", "serve", "--seed", "11", "--leads", "150",
                                "--faults", "p_429=0.03,p_5xx=0.03"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(sandbox.stdout.readline())  # type: ignore[union-attr]
        state = tmp_path / "state"
        env = {**os.environ, "LEADPILOT_CRM": "hubspot",
               "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
               "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"],
               "LEADPILOT_HUBSPOT__READ_TIMEOUT_SECONDS": "2",
               "LEADPILOT_STATE_DIR": str(state), "LEADPILOT_METRICS_PORT": "0",
               "LEADPILOT_ROUTING__FILE": str(tmp_path / "no-routing.toml"),
               "LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES": "0.01",
               "LEADPILOT_SCHEDULE__REWARDS_INTERVAL_MINUTES": "0.02"}
        from sync.wiring.connector import make_connector

        make_connector(sandbox_settings("hubspot", info, state)).ensure_fields()  # `leadpilot init-crm`
        for _ in range(KILLS):  # ~3 simulated weeks, a kill -9 in each stretch
            _admin(info, "POST", f"advance?days={rng.choice([1, 1.5, 2])}")
            if rng.random() < 0.4:  # a hung server: answers later than the client waits
                _admin(info, "POST", f"hold?seconds=4&count={rng.randint(1, 3)}")
            daemon = _start_daemon(env, state)
            time.sleep(rng.uniform(0.2, 3.0))
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=30)

        # Undisturbed: the world moves on while one daemon runs; its memory must not grow.
        daemon = _start_daemon(env, state)
        samples = []
        try:
            for _ in range(CALM_SAMPLES):
                _admin(info, "POST", "advance?days=0.5")
                time.sleep(2.0)
                assert daemon.poll() is None
                samples.append(_rss_mib(daemon.pid))
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=90)
        warm = max(samples[: CALM_SAMPLES // 2])
        late = max(samples[CALM_SAMPLES // 2 :])
        assert late <= warm * 1.10 + 16, samples  # flat: no growth beyond noise over the run

        _admin(info, "PUT", "faults", {"p_429": 0.0, "p_5xx": 0.0})
        deps = build_deps(sandbox_settings("hubspot", info, state))  # a start: closes the killed runs
        deps.store.park_base = deps.store.park_base * 0  # retry everything parked now
        final = run_cycle(deps)
        assert final.ok and final.stopped is None, (final.error, final.stopped)
        assert run_rewards(deps).ok

        runs = deps.store.recent_runs(limit=10_000)
        assert not [r for r in runs if r.status == "running"]  # every killed run closed at a later start
        assert sum(r.status == "interrupted" for r in runs) >= KILLS // 2
        assert all(len(r.errors or "") <= 1000 for r in runs)
        assert ledger_divergence(deps.store, deps.router.name) == []
        decisions = deps.store.assignments(effective=True)
        assert len({a.lead_id for a in decisions}) == len(decisions) > 50  # one decision in effect per lead
        owners = deps.connector.get_owners([a.lead_id for a in decisions])
        assert all(owners[a.lead_id] == deps.router.owner_for(a.rep_id)
                   for a in decisions if a.written_at is not None and not a.shadow)
        assert deps.store.list_parked() == []  # none lost
        assert run_rewards(deps).applied == 0  # no reward applied twice
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=30)
