"""The opportunity flag on a young org: it marks leads at the configured precision, or
``status`` (text and ``--json``) says why it cannot yet — never a silent "nothing flagged"
(real sandbox over HTTPS, real store and model registry)."""

from __future__ import annotations

import pytest

from scoring.ensemble import ModelConfig
from scoring.registry import ModelRegistry
from scoring.training import train_scorer
from sync.config.settings import ScoringSettings
from sync.jobs.retrain import run_retrain
from sync.ops.status import collect_status, print_status
from sync.wiring.scorers import ModelScorers, model_dir

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_given_a_new_orgs_1000_leads_when_trained_then_some_leads_are_flagged_at_the_precision(rig_factory):
    rig = rig_factory("salesforce", leads=1000)
    history = list(rig.deps.connector.iter_history(until=rig.deps.clock()))
    assert 700 < len(history) < 1000
    # what the retrain job trains (ModelScorers.train), with TF-IDF text instead of the encoder: fast
    scorer, report = train_scorer([h.lead.features() for h in history], [int(h.converted) for h in history],
                                  timestamps=[h.decided_at or h.lead.created_at or h.lead.modified_at for h in history],
                                  target_precision=rig.settings.scoring.target_precision,
                                  config=ModelConfig(folds=3), seed=0)
    assert ModelRegistry(model_dir(rig.settings)).challenge(scorer, report).promoted

    data = collect_status(rig.settings, rig.deps.store)

    flag = data["opportunity"]
    assert flag["flagging"] and flag["threshold"] == report.opportunity_threshold and flag["target_precision"] == 0.6
    assert flag["note"].startswith("flags leads at P(convert) >= ") and "target 0.60" in flag["note"]
    precision = float(flag["note"].split("precision ")[1].split(",")[0])
    assert precision >= 0.6
    open_leads = [lead for lead in rig.deps.connector.iter_changed_leads(None) if lead.stage is None]
    flagged = sum(s.opportunity for s in scorer.score([lead.features() for lead in open_leads]))
    assert 0 < flagged < len(open_leads) / 3, flagged


@pytest.mark.slow
def test_given_a_tiny_history_when_a_model_is_trained_then_status_says_too_few_positives(rig_factory, capsys):
    rig = rig_factory("hubspot", leads=60, scoring=ScoringSettings(min_history=30, min_history_positives=4))
    rig.deps.scorers = ModelScorers(rig.settings, rig.deps.store, clock=rig.deps.clock)

    report = run_retrain(rig.deps)

    assert report.ok and report.promoted, report.reason
    data = collect_status(rig.settings, rig.deps.store)
    flag = data["opportunity"]
    assert not flag["flagging"] and flag["threshold"] is None
    assert flag["note"].startswith(f"too few positives to set a threshold at precision 0.60: {report.positives} "
                                   "converted leads, need 20"), flag["note"]
    print_status(data)
    assert f"Opportunity flag: {flag['note']}" in " ".join(capsys.readouterr().out.split())


def test_given_a_history_too_small_to_train_when_status_then_the_cold_start_reason_is_shown(rig_factory):
    rig = rig_factory("salesforce", leads=60)
    rig.deps.scorers = ModelScorers(rig.settings, rig.deps.store, clock=rig.deps.clock)
    report = run_retrain(rig.deps)
    assert report.cold_start

    flag = collect_status(rig.settings, rig.deps.store)["opportunity"]

    assert not flag["flagging"]
    assert flag["note"] == f"cold start: nothing is flagged until a model is trained ({report.reason})"
