"""Soft labels against a hand computation; OPE against a case with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from allocation import DelayModel, LoggedDecision, OPERefused, evaluate
from allocation.rewards import delay_corrected_rate


def test_given_survival_curves_when_soft_label_then_matches_hand_computation() -> None:
    model = DelayModel(won_days=[10, 20, 30, 40], lost_days=[5, 15])
    # age 12: won still open 3 of 4 -> (3 + .5)/5 = .7 ; lost still open 1 of 2 -> 1.5/3 = .5
    assert model.survival_won(12) == pytest.approx(0.7)
    assert model.survival_lost(12) == pytest.approx(0.5)
    w = 0.6 * 0.7 / (0.6 * 0.7 + 0.4 * 0.5)
    assert model.soft_label(0.6, 12) == pytest.approx(w)
    assert model.soft_label(0.6, 0) == pytest.approx(0.6 * 4.5 / 5 / (0.6 * 4.5 / 5 + 0.4 * 2.5 / 3))


def test_given_open_leads_when_delay_corrected_then_fixed_point_holds() -> None:
    model = DelayModel(won_days=[10, 20, 30, 40], lost_days=[5, 15])
    closed = np.array([1.0, 0.0, 0.0])
    ages = np.array([12.0, 25.0])
    p = delay_corrected_rate(closed, ages, model)
    assert p == pytest.approx((1.0 + model.soft_label(p, ages).sum()) / 5)
    assert p > closed.mean()  # open leads lean to wins: wins take longer


def _logged(n: int = 400) -> list[LoggedDecision]:
    # uniform logging over two reps, alternating; r1 always wins, r2 never
    rows = []
    for i in range(n):
        chosen = "r1" if i % 2 == 0 else "r2"
        rows.append(LoggedDecision({"k": "x"}, ("r1", "r2"), chosen, 0.5, float(chosen == "r1"), {"r1": 0.5, "r2": 0.5}))
    return rows


def test_given_known_answer_when_evaluating_then_ips_snips_dr_are_exact() -> None:
    report = evaluate(_logged(), lambda ctx, eligible: {"r1": 1.0}, reward_model=lambda ctx, eligible: [1.0, 0.0])
    assert report.ips.value == pytest.approx(1.0)
    assert report.snips.value == pytest.approx(1.0)
    assert report.dr.value == pytest.approx(1.0)
    assert report.dm is not None and report.dm.value == pytest.approx(1.0)  # the reward model's own answer
    assert report.logged_rate == pytest.approx(0.5)
    half = evaluate(_logged(), lambda ctx, eligible: {"r1": 0.5, "r2": 0.5}, reward_model=lambda ctx, eligible: [0.9, 0.2])
    assert half.dr.value == pytest.approx(0.5)
    assert half.dr.low <= 0.5 <= half.dr.high


def test_given_deterministic_logging_when_target_differs_then_refuses_with_reason() -> None:
    rows = [LoggedDecision({}, ("r1", "r2"), "r1", 1.0, 1.0) for _ in range(50)]
    with pytest.raises(OPERefused, match="could not have chosen"):
        evaluate(rows, lambda ctx, eligible: {"r2": 1.0}, reward_model=lambda ctx, eligible: [0.5, 0.5])


def test_given_rare_explored_rows_when_switch_dr_then_only_the_reward_model_speaks_for_them() -> None:
    # greedy-style log: r1 with 0.95, r2 with 0.05; 5 of 100 rows explored r2. r1 always wins,
    # r2 never; the reward model is off by 0.1 on both. Target: always r2 (true value 0).
    rows = [LoggedDecision({}, ("r1", "r2"), c, p, float(c == "r1"), {"r1": 0.95, "r2": 0.05}) for c, p in [("r2", 0.05)] * 5 + [("r1", 0.95)] * 95]
    report = evaluate(rows, lambda ctx, eligible: {"r2": 1.0}, reward_model=lambda ctx, eligible: [0.9, 0.1], switch_threshold=10.0)
    assert report.dr.value == pytest.approx(0.1 + 5 * 20 * (0 - 0.1) / 100)  # = 0: unbiased, weight 20
    assert report.switch_dr is not None and report.switch_dr.value == pytest.approx(0.1)  # the model's bias
    assert report.switched == 5 and report.max_weight == pytest.approx(20.0)
    kept = evaluate(rows, lambda ctx, eligible: {"r2": 1.0}, reward_model=lambda ctx, eligible: [0.9, 0.1], switch_threshold=25.0)
    assert kept.switch_dr is not None and kept.switch_dr.value == pytest.approx(kept.dr.value) and kept.switched == 0


def test_given_full_logged_distributions_then_overlap_and_efficiency_bound_match_a_hand_computation() -> None:
    # uniform logging over two reps; target always r1; reward model q = (0.8, 0.3) everywhere
    report = evaluate(_logged(100), lambda ctx, eligible: {"r1": 1.0}, reward_model=lambda ctx, eligible: [0.8, 0.3])
    assert report.overlap == pytest.approx(0.5)
    # V = 1² · 0.8 · 0.2 / 0.5 + Var(q_target = 0.8) = 0.32; SD = sqrt(0.32 / 100); relative to 0.8
    assert report.relative_sd_bound == pytest.approx(np.sqrt(0.32 / 100) / 0.8)
    chosen_only = [LoggedDecision(r.context, r.eligible, r.chosen, r.propensity, r.reward) for r in _logged(100)]
    bare = evaluate(chosen_only, lambda ctx, eligible: {"r1": 1.0}, reward_model=lambda ctx, eligible: [0.8, 0.3])
    assert bare.overlap is None and bare.relative_sd_bound is None  # unknowable without the distributions
    assert bare.dr.value == pytest.approx(report.dr.value)


def test_given_a_logged_zero_on_an_eligible_rep_when_the_target_takes_it_then_refuses() -> None:
    # chosen propensity 0.5 alone would let r3 pass as "assumed positive"; the full distribution says 0
    rows = [LoggedDecision({}, ("r1", "r2", "r3"), "r1", 0.5, 1.0, {"r1": 0.5, "r2": 0.5, "r3": 0.0}) for _ in range(20)]
    with pytest.raises(OPERefused, match="could not have chosen"):
        evaluate(rows, lambda ctx, eligible: {"r3": 1.0}, reward_model=lambda ctx, eligible: [0.5, 0.5, 0.5])
    unknown = [LoggedDecision(r.context, r.eligible, r.chosen, r.propensity, r.reward) for r in rows]
    assert evaluate(unknown, lambda ctx, eligible: {"r3": 1.0}, reward_model=lambda ctx, eligible: [0.5, 0.5, 0.5]).n == 20


def test_given_a_sliver_of_mass_on_a_never_logged_rep_then_bound_covers_the_rest_and_mass_is_reported() -> None:
    # uniform over r1/r2, r3 logged with probability 0; the target sends 0.5 % of its mass to r3
    rows = [LoggedDecision({}, ("r1", "r2", "r3"), c, 0.5, 1.0, {"r1": 0.5, "r2": 0.5, "r3": 0.0}) for c in ["r1", "r2"] * 50]
    report = evaluate(rows, lambda ctx, eligible: {"r1": 0.995, "r3": 0.005}, reward_model=lambda ctx, eligible: [0.8, 0.3, 0.5])
    assert report.unsupported_mass == pytest.approx(0.005)
    # V = 0.995² · 0.8 · 0.2 / 0.5 + Var(q_target) (constant, 0); r3's term is left out, not divided by zero
    value = 0.995 * 0.8 + 0.005 * 0.5
    assert report.relative_sd_bound == pytest.approx(np.sqrt(0.995**2 * 0.16 / 0.5 / 100) / value)


def test_given_an_unlucky_log_that_never_took_the_candidates_rep_then_interval_is_as_wide_as_the_bound() -> None:
    # uniform logging over r1/r2, but by chance every row chose r1 and every reward is 1:
    # the sample SD of DR's terms is 0; the efficiency bound says the truth is far less certain
    rows = [LoggedDecision({}, ("r1", "r2"), "r1", 0.5, 1.0, {"r1": 0.5, "r2": 0.5}) for _ in range(100)]
    report = evaluate(rows, lambda ctx, eligible: {"r2": 1.0}, reward_model=lambda ctx, eligible: [0.9, 0.6])
    floor = np.sqrt(1.0 * 0.6 * 0.4 / 0.5 / 100)  # sqrt(V / n), V = π² q(1 - q) / π_b
    assert report.dr.value == pytest.approx(0.6) and report.dr.se == pytest.approx(floor)
    assert report.ips.value == pytest.approx(0.0) and report.ips.se == pytest.approx(floor)
    bare = [LoggedDecision(r.context, r.eligible, r.chosen, r.propensity, r.reward) for r in rows]
    assert evaluate(bare, lambda ctx, eligible: {"r2": 1.0}, reward_model=lambda ctx, eligible: [0.9, 0.6]).dr.se == pytest.approx(0.0)


def test_given_a_rare_win_under_large_weights_then_every_estimate_and_interval_stays_within_0_and_1() -> None:
    # r2 was logged with 0.05 and won once in 60 rows: IPS's normal interval would reach below 0
    # (the "IPS 0.083 [-0.103, 0.270]"); a conversion rate cannot.
    rows = []
    for i in range(60):
        chosen = "r2" if i % 20 == 0 else "r1"
        won = float(chosen == "r2" and i == 0)
        p = 0.05 if chosen == "r2" else 0.95
        rows.append(LoggedDecision({"k": "x"}, ("r1", "r2"), chosen, p, won, {"r1": 0.95, "r2": 0.05}))
    report = evaluate(rows, lambda ctx, eligible: {"r2": 1.0}, reward_model=lambda ctx, eligible: [0.0, 0.3])
    raw_low = report.ips.value - 1.959964 * report.ips.se
    assert raw_low < 0  # the unclipped interval would leave [0, 1]
    for est in (report.ips, report.snips, report.dr, report.switch_dr, report.dm):
        assert est is not None
        assert 0.0 <= est.low <= est.value <= est.high <= 1.0
    assert report.ips.low == 0.0
