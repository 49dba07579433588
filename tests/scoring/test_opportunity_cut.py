"""The opportunity threshold says what it flags, or why it flags nothing."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.model import opportunity_cut


def test_given_enough_positives_when_cutting_then_the_lowest_cut_at_the_precision_and_what_it_flags() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(600)
    y = (rng.random(600) < p).astype(int)  # calibrated: the top leads convert at about their score
    cut, note = opportunity_cut(y, p, 0.8)
    assert cut is not None
    flagged = p >= cut
    assert y[flagged].mean() >= 0.8 and flagged.sum() >= 5
    assert f"{flagged.sum()} of 600" in note and "target 0.80" in note


def test_given_seven_positives_when_cutting_then_too_few_positives_is_said_with_the_counts() -> None:
    y = np.array([1] * 7 + [0] * 60)
    cut, note = opportunity_cut(y, np.linspace(1, 0, 67), 0.8)
    assert cut is None
    assert note.startswith("too few positives to set a threshold at precision 0.80: 7 converted leads, need 20")


@pytest.mark.parametrize("target", [0.6, 0.9])
def test_given_scores_that_never_reach_the_precision_when_cutting_then_the_best_precision_is_said(target) -> None:
    y = np.tile([1, 0, 0], 40)  # a third converts at every score
    cut, note = opportunity_cut(y, np.linspace(1, 0, 120), target)
    assert cut is None
    assert note.startswith(f"no threshold reaches precision {target:.2f}") and "best cut converts 0.43 (its top 7)" in note  # 3 of the top 7
