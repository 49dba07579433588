"""The retrain job end to end: CRM history → trained model → champion/challenger → scoring."""

from __future__ import annotations

import random

import pytest

from connectors.records import LabelledLead
from sync.jobs.cycle import run_cycle
from sync.jobs.retrain import run_retrain

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _model_scorers(rig):
    rig.deps.scorers = rig.model_scorers()
    return rig.deps.scorers


def test_given_too_little_history_when_retrain_then_cold_start_keeps_the_prior(rig_factory):
    rig = rig_factory("hubspot", leads=60)
    scorers = _model_scorers(rig)

    report = run_retrain(rig.deps)

    assert report.ok and report.cold_start and report.version is None
    assert "cold start" in report.reason and scorers.version == "prior"
    assert [m.version for m in rig.deps.store.list_models()] == []


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_history_when_retrain_then_first_model_promoted_and_a_worse_challenger_rejected(rig_factory, crm):
    rig = rig_factory(crm, leads=450)
    scorers = _model_scorers(rig)

    first = run_retrain(rig.deps)

    assert first.ok and not first.cold_start and first.promoted, first.reason
    assert first.history >= rig.settings.scoring.min_history and 0 < first.metrics["roc_auc"] <= 1
    assert scorers.version == first.version == rig.deps.store.champion().version
    rig.srv.advance(1)
    cycle = run_cycle(rig.deps)  # the cycle now scores with the trained champion
    assert cycle.ok and cycle.scored > 0
    written = {r.get("LeadPilot_Model_Version__c") or r.get("leadpilot_model_version") for r in rig.leads().values()}
    assert first.version in written

    # A challenger that learned from scrambled labels (its training part only: validation is
    # the newest 20 %, kept true) must not replace the champion on the same validation leads.
    history = sorted(rig.deps.connector.iter_history(until=rig.deps.clock()),
                     key=lambda h: h.decided_at or h.lead.created_at or h.lead.modified_at)
    cut = int(len(history) * 0.75)
    labels = [h.converted for h in history[:cut]]
    random.Random(7).shuffle(labels)
    scrambled = [LabelledLead(h.lead, y, h.decided_at) for h, y in zip(history[:cut], labels, strict=True)]
    outcome = scorers.train(scrambled + history[cut:], rig.deps.clock())

    # The registry compares both on the challenger's validation leads: the scrambled one loses.
    assert not outcome.promoted and "kept" in outcome.reason, outcome.reason
    assert scorers.version == first.version == rig.deps.store.champion().version
    statuses = {m.version: m.status for m in rig.deps.store.list_models()}
    assert statuses == {first.version: "champion", outcome.version: "challenger"}

