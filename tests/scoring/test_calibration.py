"""Calibration: the tie-broken isotonic map, the cross-validated choice and the ECE noise floor."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import metrics as M
from scoring.ensemble import ISOTONIC_TIE_WEIGHT, Calibrator, ModelConfig, _choose_calibration, fit_calibrator


def _draw(shape: str, n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    p = 1 / (1 + np.exp(-z)) if shape == "logistic" else np.where(z < 0, 0.1, 0.9)  # "step": not a sigmoid
    return z, (rng.random(n) < p).astype(int)


def _folds(n: int, k: int = 5) -> list[np.ndarray]:
    return [np.arange(i, n, k) for i in range(k)]


def test_given_isotonic_when_calibrating_then_strictly_increasing_and_ranking_kept() -> None:
    z, y = _draw("step")
    cal = fit_calibrator("isotonic", z, y)
    grid = np.sort(np.unique(z))
    assert np.all(np.diff(cal(grid)) > 0)  # isotonic alone is flat over long stretches
    assert np.sum(np.diff(cal.model.predict(grid)) == 0) > 100
    assert M.roc_auc(y, cal(z)) == pytest.approx(M.roc_auc(y, z), abs=1e-12)


def test_given_isotonic_when_calibrating_then_the_sigmoid_share_is_the_tie_weight() -> None:
    z, y = _draw("step")
    cal = fit_calibrator("isotonic", z, y)
    iso, sig = cal.model.predict(z), fit_calibrator("sigmoid", z, y)(z)
    assert cal.tie_weight == ISOTONIC_TIE_WEIGHT == 0.1
    assert cal(z) == pytest.approx((1 - ISOTONIC_TIE_WEIGHT) * iso + ISOTONIC_TIE_WEIGHT * sig)


def test_given_a_calibrator_pickled_before_tie_breaking_when_called_then_plain_isotonic() -> None:
    z, y = _draw("step")
    cal = fit_calibrator("isotonic", z, y)
    old = Calibrator.__new__(Calibrator)
    old.__dict__.update({"method": "isotonic", "model": cal.model})  # the old pickle's fields only
    assert old(z) == pytest.approx(cal.model.predict(z))


@pytest.mark.parametrize("metric", ["brier", "ece"])
def test_given_a_step_shaped_truth_when_auto_then_isotonic_wins(metric: str) -> None:
    z, y = _draw("step")
    method, extra = _choose_calibration(z, y, _folds(len(y)), ModelConfig(calibration_metric=metric))
    assert method == "isotonic" and extra["calibration_metric"] == metric
    scores = extra["calibration_cv"]
    assert set(scores) == {"sigmoid", "isotonic"} and scores["isotonic"][metric] < scores["sigmoid"][metric]


def test_given_a_logistic_truth_when_auto_with_brier_then_sigmoid_wins() -> None:
    z, y = _draw("logistic")
    method, extra = _choose_calibration(z, y, _folds(len(y)), ModelConfig())
    assert method == "sigmoid"
    assert extra["calibration_cv"]["sigmoid"]["brier"] < extra["calibration_cv"]["isotonic"]["brier"]


def test_given_few_rows_or_a_fixed_method_when_choosing_then_no_cross_validation() -> None:
    z, y = _draw("step", n=400)
    assert _choose_calibration(z, y, _folds(400), ModelConfig()) == ("sigmoid", {})
    z, y = _draw("step")
    assert _choose_calibration(z, y, _folds(len(y)), ModelConfig(calibration="isotonic")) == ("isotonic", {})


def test_given_a_bad_calibration_metric_when_configuring_then_clear_error() -> None:
    with pytest.raises(ValueError, match="calibration_metric must be brier or ece"):
        ModelConfig(calibration_metric="auc")


def test_given_predictions_when_null_draws_then_their_mean_is_the_noise_floor() -> None:
    p = np.random.default_rng(3).random(2000)
    draws = M.ece_null_draws(p, draws=50, seed=1)
    assert draws.shape == (50,) and np.all(draws > 0)
    assert M.ece_noise_floor(p, draws=50, seed=1) == pytest.approx(float(draws.mean()))
