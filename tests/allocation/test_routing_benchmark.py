"""The routing benchmark's own machinery on a short simulated stretch: the world is the
sample's, every policy drives the real Router, and the summary is what the note quotes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import routing
from benchmarks.routing_world import DATA, RATE, REPS, load_sample, make_world

pytestmark = pytest.mark.skipif(not (DATA / "sales_pipeline.csv").exists(), reason="needs ../shared/data/crm-sales-opportunities")


def test_given_sixty_days_of_strong_skill_when_policies_run_then_ranked_and_within_the_rules() -> None:
    sample = load_sample()
    world = make_world(sample, "strong", seed=3, days=60)
    assert len(world["times"]) == pytest.approx(60 * RATE, rel=0.1)
    assert np.all(np.diff(world["times"]) >= 0)
    delay = float(np.concatenate([sample.won_days, sample.lost_days]).mean())
    capacity = math.ceil(1.25 * RATE * delay / REPS)
    runs = {name: [routing.run_policy(name, world, sample, 3, capacity)] for name in ("random", "oracle", "round_robin", *routing.LOGGED)}
    conv = {name: r[0]["expected_conversions"] for name, r in runs.items()}
    assert conv["oracle"] > conv["contextual"] > conv["random"]  # 60 days of strong skill: learned
    assert all(r[0]["capacity_overflows"] == 0 for r in runs.values())
    assert runs["contextual"][0]["min_share_vs_equal"] >= 0.7  # fairness floor 0.8, a short window
    dr = runs["contextual"][0]["dr"]
    assert dr["logged_leads"] == len(world["times"]) - int(len(world["times"]) * 0.45)
    assert 0.3 < dr["true_value"] < 1.0 and dr["max_weight"] <= REPS / 0.05 + 1e-6  # exploration floor 0.05 over 30
    assert 0.0 < dr["target_logged_probability_mean"] <= 1.0
    evaluation = runs["contextual_evaluation"][0]["dr"]  # the same policy logging with floor 0.3
    assert evaluation["max_weight"] <= REPS / routing.EVALUATION_FLOOR + 1e-6
    assert evaluation["unbiased_relative_sd_bound"] < dr["unbiased_relative_sd_bound"]  # more exploration: a tighter bound
    assert conv["contextual_evaluation"] < conv["contextual"]  # and it costs conversions
    summary = routing.summarise(runs)
    assert summary["oracle"]["uplift_captured_year"]["mean"] == pytest.approx(1.0)
    assert summary["random"]["uplift_captured_year"]["mean"] == pytest.approx(0.0)
    assert 0.0 < summary["contextual"]["uplift_captured_year"]["mean"] < 1.0
    assert summary["contextual_minus_round_robin_conversions"]["mean"] == pytest.approx(conv["contextual"] - conv["round_robin"])


def test_given_a_simulated_year_then_leads_arrive_at_uniform_moments_of_their_day() -> None:
    times = make_world(load_sample(), "flat", seed=0)["times"]
    fraction = times - np.floor(times)
    first, last = fraction[times < 60], fraction[times >= 300]
    # uniform within the day in January as in December (mean 0.5, SD 1/sqrt(12) = 0.29)
    assert abs(first.mean() - 0.5) < 0.03 and abs(last.mean() - 0.5) < 0.03
    assert np.all(np.diff(times) >= 0)
