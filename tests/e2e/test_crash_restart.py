"""Crash test: SIGKILL the daemon at seeded random moments of its cycles, restart it, check the invariants.

The sandbox runs in its own process (`leadpilot sandbox serve` with faults on) so that it
survives the kills; the simulated world moves on between restarts. At the end, with faults
off, one clean cycle and rewards run, then: every lead is scored, none is lost (nothing
parked), none was assigned twice (one decision per lead, the CRM owner is that decision),
and no reward was applied twice (the policy closed exactly the rewarded assignments and a
replay applies nothing). Eight kills in the suite, twenty with ``LEADPILOT_SOAK=1``.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from allocation.ledger import OPEN
from sync.jobs.cycle import run_cycle
from sync.jobs.rewards import run_rewards
from sync.wiring.deps import build_deps

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_given_sigkills_at_random_points_when_restarted_then_nothing_lost_or_doubled(daemon_world, soak) -> None:
    kills = 20 if soak else 8
    rng = random.Random(20)
    world = daemon_world(seed=5, leads=200, faults="p_429=0.05,p_5xx=0.05")
    for _ in range(kills):
        world.admin("POST", f"advance?days={rng.choice([0.25, 0.5, 1, 2])}")
        daemon = world.start_daemon("sync")
        time.sleep(rng.uniform(0.0, 2.5))  # a seeded moment anywhere in its cycles
        world.kill(daemon)
    world.admin("PUT", "faults", {"p_429": 0.0, "p_5xx": 0.0})
    deps = build_deps(world.settings())
    deps.park_base_seconds = 0
    deps.store.park_base = deps.store.park_base * 0  # retry everything parked now
    killed_runs = deps.store.recent_runs(limit=1000, kind="sync")
    # the kills landed inside work: runs were started, and some never finished — each such run
    # was closed as "interrupted" by the next start (none is left "running" forever)
    assert len(killed_runs) >= kills // 2 and any(r.status == "interrupted" for r in killed_runs)
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
    truth = {t["lead_id"]: t for t in world.admin("GET", "ground-truth")["leads"]}
    assert len(truth) == len(leads)
    rewarded = [a for a in decisions if a.reward_applied_at is not None]
    _, status, _, _ = deps.router.router.ledger.arrays()
    assert int(np.sum(status != OPEN)) == len(rewarded)  # each reward reached the policy once
    assert run_rewards(deps).applied == 0
