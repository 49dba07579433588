"""Soak: the daemon for days of simulated time against a faulty, sometimes hung sandbox, killed
with ``kill -9`` at seeded moments, then run for a while undisturbed; at the end the routing
state still equals the decisions, nothing is lost or doubled, no run is left "running", and
the daemon's memory stayed flat.

The sandbox runs in its own process (``leadpilot sandbox serve`` with 429s and 503s) so that it
survives the kills; each round moves the world on one or two days, and some rounds hold the
next responses longer than the client's read timeout (a hung server).

The suite runs a short soak (4 kills, ~a week, a short calm stretch) through the same paths;
``LEADPILOT_SOAK=1`` runs the long one (12 kills, ~3 simulated weeks, 10 memory samples).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from sync.jobs.cycle import run_cycle
from sync.jobs.rewards import run_rewards
from sync.wiring.deps import build_deps
from sync.wiring.routing import ledger_divergence

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="memory is read from /proc")
def test_given_weeks_of_faults_hangs_and_sigkills_then_state_equals_decisions_and_memory_is_flat(
    daemon_world, soak,
) -> None:
    kills, calm_samples = (12, 10) if soak else (4, 6)
    rng = random.Random(17)
    world = daemon_world(seed=11, leads=150, faults="p_429=0.03,p_5xx=0.03",
                         LEADPILOT_HUBSPOT__READ_TIMEOUT_SECONDS="2")
    for _ in range(kills):  # a kill -9 in each stretch of a day or two
        world.admin("POST", f"advance?days={rng.choice([1, 1.5, 2])}")
        if rng.random() < 0.4:  # a hung server: answers later than the client waits
            world.admin("POST", f"hold?seconds=4&count={rng.randint(1, 3)}")
        daemon = world.start_daemon()
        time.sleep(rng.uniform(0.2, 3.0))
        world.kill(daemon)

    # Undisturbed: the world moves on while one daemon runs; its memory must not grow.
    daemon = world.start_daemon()
    samples = []
    try:
        for _ in range(calm_samples):
            world.admin("POST", "advance?days=0.5")
            time.sleep(2.0)
            assert daemon.poll() is None
            samples.append(_rss_mib(daemon.pid))
    finally:
        daemon.terminate()
        daemon.wait(timeout=90)
    warm = max(samples[: calm_samples // 2])
    late = max(samples[calm_samples // 2 :])
    assert late <= warm * 1.10 + 16, samples  # flat: no growth beyond noise over the run

    world.admin("PUT", "faults", {"p_429": 0.0, "p_5xx": 0.0})
    deps = build_deps(world.settings())  # a start: closes the killed runs
    deps.store.park_base = deps.store.park_base * 0  # retry everything parked now
    final = run_cycle(deps)
    assert final.ok and final.stopped is None, (final.error, final.stopped)
    assert run_rewards(deps).ok

    runs = deps.store.recent_runs(limit=10_000)
    assert not [r for r in runs if r.status == "running"]  # every killed run closed at a later start
    assert sum(r.status == "interrupted" for r in runs) >= kills // 2
    assert all(len(r.errors or "") <= 1000 for r in runs)
    assert ledger_divergence(deps.store, deps.router.name) == []
    decisions = deps.store.assignments(effective=True)
    assert len({a.lead_id for a in decisions}) == len(decisions) > 50  # one decision in effect per lead
    owners = deps.connector.get_owners([a.lead_id for a in decisions])
    assert all(owners[a.lead_id] == deps.router.owner_for(a.rep_id)
               for a in decisions if a.written_at is not None and not a.shadow)
    assert deps.store.list_parked() == []  # none lost
    assert run_rewards(deps).applied == 0  # no reward applied twice
