"""What ``leadpilot evaluate-policy`` prints for a person: estimates, how much data spoke, and
what to do when the interval is too wide to tell policies apart."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from allocation import LoggedDecision, evaluate
from sync.ops.status import describe_evaluation


def _log(n: int, explore: float, seed: int) -> list[LoggedDecision]:
    # two reps; the logging policy favours r1; r2 converts better (0.7 vs 0.5)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        chosen = "r2" if rng.random() < explore else "r1"
        p = explore if chosen == "r2" else 1 - explore
        won = rng.random() < (0.7 if chosen == "r2" else 0.5)
        rows.append(LoggedDecision({}, ("r1", "r2"), chosen, p, float(won), {"r1": 1 - explore, "r2": explore}))
    return rows


def _summary(rows: list[LoggedDecision]) -> list[str]:
    report = evaluate(rows, lambda ctx, eligible: {"r2": 1.0}, reward_model=lambda ctx, eligible: [0.5, 0.6])
    return describe_evaluation("contextual", asdict(report))


def test_given_well_explored_log_then_estimates_without_a_hint() -> None:
    lines = _summary(_log(4_000, 0.5, seed=1))
    assert lines[0].startswith("contextual: estimated conversion rate from 4,000 closed decisions")
    dr = next(line for line in lines if "doubly robust" in line)
    value, low, high = (float(x) for x in dr.replace("[", " ").replace("]", " ").replace(",", " ").split()[2:5])
    assert low <= 0.7 <= high and low < value < high
    assert any(line.startswith("effective sample size") for line in lines)
    assert not any("EXPLORATION_FLOOR" in line for line in lines)


def test_given_barely_explored_log_then_says_why_the_interval_is_wide_and_what_to_do() -> None:
    lines = _summary(_log(400, 0.02, seed=2))
    hint = lines[-1]
    assert hint.startswith("the doubly robust interval is ±")
    assert "LEADPILOT_ROUTING__EXPLORATION_FLOOR=0.3" in hint and "--since" in hint


def test_given_logged_distributions_then_says_how_often_the_log_made_the_candidates_choice() -> None:
    lines = _summary(_log(4_000, 0.5, seed=1))
    line = next(line for line in lines if "made contextual's choice" in line)
    assert "probability 0.50 on average" in line and "tighter than ±" in line
    bare = [LoggedDecision(r.context, r.eligible, r.chosen, r.propensity, r.reward) for r in _log(400, 0.5, seed=1)]
    assert not any("made contextual's choice" in line for line in _summary(bare))


def test_given_a_sliver_of_unsupported_mass_then_says_the_estimates_may_be_off_by_it() -> None:
    rows = [LoggedDecision({}, ("r1", "r2", "r3"), c, 0.5, 1.0, {"r1": 0.5, "r2": 0.5, "r3": 0.0}) for c in ["r1", "r2"] * 200]
    report = evaluate(rows, lambda ctx, eligible: {"r1": 0.995, "r3": 0.005}, reward_model=lambda ctx, eligible: [0.8, 0.3, 0.5])
    line = next(line for line in describe_evaluation("contextual", asdict(report)) if "could not have chosen" in line)
    assert line.startswith("0.5% of contextual's choices") and "±0.005" in line
    assert not any("could not have chosen" in line for line in _summary(_log(400, 0.5, seed=1)))
