"""Metrics against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring import metrics as M


def test_given_two_bins_when_ece_then_matches_hand_computation() -> None:
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.1, 0.1, 0.9, 1.0]  # p = 1.0 belongs to the last bin
    # bin 1: mean p 0.1, rate 1/3 -> 3/5 * 0.2333; bin 9: mean p 0.95, rate 1 -> 2/5 * 0.05
    assert M.ece(y, p) == pytest.approx(3 / 5 * (1 / 3 - 0.1) + 2 / 5 * 0.05)


def test_given_scores_when_lift_top_decile_then_top_rate_over_base_rate() -> None:
    y = np.array([1] + [0] * 9 + [1] * 4 + [0] * 6)
    p = np.linspace(1, 0, 20)
    # top 2 of 20: labels 1, 0 -> 0.5; base 5/20 = 0.25
    assert M.lift_top_decile(y, p) == pytest.approx(2.0)


def test_given_one_class_when_auc_then_nan_and_brier_still_defined() -> None:
    assert math.isnan(M.roc_auc([1, 1], [0.2, 0.9]))
    assert math.isnan(M.pr_auc([0, 0], [0.2, 0.9]))
    assert M.brier([1, 1], [0.5, 1.0]) == pytest.approx(0.125)


def test_given_predictions_when_reliability_table_then_ten_bins_with_counts() -> None:
    table = M.reliability_table([0, 1, 1], [0.05, 0.55, 0.58])
    assert len(table) == 10 and [r["n"] for r in table][:6] == [1, 0, 0, 0, 0, 2]
    assert table[5]["mean_predicted"] == pytest.approx(0.565) and table[5]["fraction_positive"] == 1.0


def test_given_perfectly_calibrated_draws_when_noise_floor_then_positive_and_shrinks_with_n() -> None:
    small = M.ece_noise_floor(np.full(100, 0.3), draws=50)
    large = M.ece_noise_floor(np.full(10_000, 0.3), draws=50)
    assert 0 < large < small


def test_given_mismatched_lengths_when_evaluating_then_clear_error() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        M.evaluate([0, 1], [0.5])
