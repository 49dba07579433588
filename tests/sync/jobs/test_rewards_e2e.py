"""The rewards job end to end: outcomes closed in the sandbox reach the policy exactly once."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from allocation.ledger import OPEN
from sync.jobs.cycle import run_cycle
from sync.jobs.rewards import run_rewards

CRMS = ("salesforce", "hubspot")
pytestmark = pytest.mark.integration


def _closed_in_policy(rig) -> int:
    _, status, _, _ = rig.deps.router.router.ledger.arrays()
    return int(np.sum(status != OPEN))


@pytest.mark.parametrize("crm", CRMS)
def test_given_closed_deals_when_rewards_run_again_and_after_restart_then_each_reward_is_applied_once(rig_factory, crm):
    rig = rig_factory(crm, leads=200)
    disqualified = converted = 0
    for _ in range(10):  # 100 simulated days of arrivals, routing and closing deals
        rig.srv.advance(10)
        cycle = run_cycle(rig.deps)
        disqualified, converted = disqualified + cycle.disqualified, converted + cycle.converted
    truth = {rig.cid(lid): t for lid, t in rig.srv.world.truth.items()}
    # The cycle's pulls already applied the lead-level outcomes: disqualified leads as losses
    # (exactly once), converted ones as the early proxy reward (the deal has not closed yet).
    early = [a for a in rig.deps.store.assignments() if a.reward_applied_at is not None]
    assert disqualified == len(early) > 0 and converted > 0
    assert all(truth[a.lead_id].converted is False and a.outcome == "lost" for a in early)
    assert int(rig.deps.router.router.ledger.arrays()[3].sum()) >= converted

    first = run_rewards(rig.deps)

    assert first.ok and first.applied > 0 and first.ticked
    applied = [a for a in rig.deps.store.assignments() if a.reward_applied_at is not None]
    assert len(applied) == disqualified + first.applied == _closed_in_policy(rig)
    assert all((a.outcome == "won") == bool(truth[a.lead_id].won) for a in applied)
    assert first.won == sum(a.outcome == "won" for a in applied)
    assert all(truth[a.lead_id].converted for a in applied if a not in early)

    again = run_rewards(rig.deps)
    assert again.applied == 0

    rig.rebuild()  # a new process on the same store, and the watermark forgotten: a full replay
    rig.deps.store.set_watermark("outcomes", datetime(2000, 1, 1, tzinfo=UTC))
    replay = run_rewards(rig.deps)
    assert replay.applied == 0 and replay.already_applied == first.applied
    assert _closed_in_policy(rig) == len(applied)
    assert len([a for a in rig.deps.store.assignments() if a.reward_applied_at]) == len(applied)


def test_given_dry_run_when_rewards_run_then_neither_store_nor_policy_changes(rig_factory):
    rig = rig_factory("hubspot", leads=200)
    for _ in range(8):
        rig.srv.advance(10)
        run_cycle(rig.deps)
    rig.rebuild(dry_run=True)
    version = rig.deps.router.version
    before = {a.lead_id: a.reward_applied_at for a in rig.deps.store.assignments()}  # disqualified: by the cycle

    report = run_rewards(rig.deps)

    assert report.applied > 0
    assert {a.lead_id: a.reward_applied_at for a in rig.deps.store.assignments()} == before
    assert rig.deps.store.get_watermark("outcomes") is None
    assert rig.deps.store.load_policy_state(rig.deps.router.name).version == version
