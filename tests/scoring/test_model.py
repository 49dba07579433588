"""The trained model: calibration, scores, grades, opportunity flag and reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from scoring import metrics as M
from scoring.ensemble import ModelConfig, fit_calibrator
from scoring.model import default_grade_thresholds, precision_threshold
from scoring.reasons import MINUS, PLUS, Reason, render
from scoring.training import DataError, train_scorer


def test_given_overconfident_scores_when_calibrated_on_held_out_data_then_ece_drops() -> None:
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 1.5, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    raw = 3.0 * true_logit + 1.0  # overconfident and shifted
    fit, test = slice(0, 2000), slice(2000, 4000)
    before = M.ece(y[test], 1 / (1 + np.exp(-raw[test])))
    for method in ("sigmoid", "isotonic"):
        after = M.ece(y[test], fit_calibrator(method, raw[fit], y[fit])(raw[test]))
        assert after < before / 3, (method, before, after)


def test_given_synthetic_leads_when_trained_then_validation_metrics_and_choices_are_reported(trained) -> None:
    scorer, report, _, _ = trained
    assert report.split == "stratified" and report.n_validation == 80 and report.n_train == 400
    assert report.metrics["roc_auc"] > 0.75
    assert report.model["calibration"] in ("sigmoid", "isotonic")
    assert set(report.model["oof_logloss_by_weight"]) == {"0.0", "0.25", "0.5", "0.75", "1.0"}
    assert scorer.describe_model().endswith(report.model["calibration"])


def test_given_a_trained_scorer_when_scoring_then_each_field_is_consistent(trained) -> None:
    scorer, _, rows, _ = trained
    scores = scorer.score(rows[:50])
    probs = scorer.predict_proba(rows[:50])
    assert [s.probability for s in scores] == pytest.approx(probs.tolist())
    for s in scores:
        assert 0 <= s.probability <= 1 and s.score == round(100 * s.probability)
        assert s.grade == scorer.grade(s.probability)
        assert s.opportunity == (scorer.opportunity_threshold is not None and s.probability >= scorer.opportunity_threshold)
        assert 0 < len(s.reasons) <= 250 and s.model_version == "unregistered"
    assert scorer.score([]) == []


def test_given_the_synthetic_world_when_explaining_then_reasons_follow_the_learnt_effects(trained) -> None:
    scorer, _, _, _ = trained
    lead = {"source": "Reference", "occupation": "Student", "visits": 3,
            "text": "We have budget approved and a timeline"}
    reasons = {r.column: r for r in scorer.explain([lead])[0]}
    assert str(reasons["source"]) == f"Source: Reference {PLUS}"
    assert str(reasons["occupation"]) == f"Occupation: Student {MINUS}"
    assert reasons["text"].contribution > 0 and reasons["text"].text.startswith('Message: "')
    assert "budget approved" in reasons["text"].text
    text = scorer.score([lead])[0].reasons
    assert text.index("Source: Reference (+)") < text.index("Occupation: Student (\u2212)")


def test_given_reasons_when_explained_then_they_are_differences_of_the_model_itself(trained) -> None:
    scorer, _, rows, _ = trained
    feats = scorer.features(rows[:5])
    base = scorer.ensemble.raw_logit(scorer.featurizer, feats)
    swapped = sum(w * scorer.ensemble.raw_logit(scorer.featurizer, scorer.featurizer.with_value(feats, 1, v))
                  for w, v in scorer.featurizer.backgrounds[1])
    src = [next(r for r in rs if r.column == "source") for rs in scorer.explain(rows[:5])]
    assert [r.contribution for r in src] == pytest.approx((base - swapped).tolist())


def test_given_unknown_levels_unicode_and_huge_text_when_scoring_then_it_still_scores(trained) -> None:
    scorer, _, _, _ = trained
    odd = [{"source": "Nüe Quelle ✓", "occupation": "Astronaut", "visits": "n/a", "text": "😀" * 100_000},
           {}, {"source": None, "visits": -5}]
    scores = scorer.score(odd)
    assert len(scores) == 3 and all(0 <= s.probability <= 1 and len(s.reasons) <= 250 for s in scores)


def test_given_long_values_when_rendering_then_whole_reasons_fit_the_limit() -> None:
    reasons = [Reason("a", "Title: " + "x" * 300, 2.0), Reason("b", "Source: Web", 1.0),
               Reason("c", "Country: Peru", -0.5), Reason("d", "Tiny", 0.01)]
    text = render(reasons, 60)
    assert len(text) <= 60 and text.endswith(f"Source: Web {PLUS}; Country: Peru {MINUS}") is False
    assert "Tiny" not in render(reasons, 250)  # below the minimum effect
    assert render([], 250) == "No single factor stands out"


def test_given_validation_scores_when_choosing_the_threshold_then_lowest_cut_reaching_the_precision() -> None:
    y = [1, 1, 0, 1, 0, 0, 1, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    # precision at cut 0.6: 3/4; at 0.3: 4/7 -> target 0.7 -> 0.6
    assert precision_threshold(y, p, 0.7, min_flagged=1) == pytest.approx(0.6)
    assert precision_threshold([0, 0, 1], [0.9, 0.8, 0.1], 0.9, min_flagged=1) is None


def test_given_a_base_rate_when_default_grades_then_by_expected_conversion() -> None:
    assert default_grade_thresholds(0.1) == pytest.approx((0.2, 0.1, 0.05))
    a, b, c = default_grade_thresholds(0.6)
    assert 1 > a > b > c > 0


def test_given_timestamps_when_training_then_the_newest_leads_validate(lead_spec) -> None:
    from scoring_data import synthetic_leads

    rows, labels = synthetic_leads(200, seed=1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [start + timedelta(hours=i) for i in range(200)]
    _, report = train_scorer(rows, labels, lead_spec, seed=0, timestamps=stamps, refit=False,
                             config=ModelConfig(folds=2, blend_weights=(0.0,)))
    assert report.split == "time" and report.n_validation == 40
    assert report.window == (stamps[0].isoformat(), stamps[-1].isoformat())
    newest = [rows[i]["source"] for i in range(160, 200)]
    assert report.validation_rows["source"].tolist() == newest


def test_given_bad_labels_when_training_then_clear_errors(lead_spec) -> None:
    rows = [{"source": "a"}] * 10
    with pytest.raises(DataError, match="0/1 or booleans"):
        train_scorer(rows, ["yes"] * 10, lead_spec)
    with pytest.raises(DataError, match="at least 4 converted"):
        train_scorer(rows, [1] * 9 + [0], lead_spec)
    with pytest.raises(DataError, match="10 rows but 9 labels"):
        train_scorer(rows, [1, 0] * 4 + [1], lead_spec)


def test_given_crm_lead_mappings_when_trained_with_the_default_spec_then_scores_come_back() -> None:
    from connectors.records import Lead

    rng = np.random.default_rng(7)
    leads, labels = [], []
    for i in range(160):
        web = rng.random() < 0.5
        leads.append(Lead(id=f"L{i}", created_at=None, modified_at=datetime(2026, 1, 1, tzinfo=UTC), owner_id=None,
                          title=["CTO", "Intern", None][i % 3], industry="Software", employees=float(rng.integers(1, 5000)),
                          revenue=None, country=["DE", "US"][i % 2], source="Web" if web else "Partner",
                          status="Open", text="Need pricing and a demo" if i % 4 == 0 else ""))
        labels.append(int(rng.random() < (0.6 if web else 0.2)))
    scorer, report = train_scorer([lead.features() for lead in leads], labels, None, seed=0,
                                  config=ModelConfig(folds=2))
    assert "status" not in scorer.spec.columns and report.n_validation == 32
    scores = scorer.score([lead.features() for lead in leads[:4]])
    assert len(scores) == 4 and all(s.reasons and len(s.reasons) <= 250 for s in scores)
