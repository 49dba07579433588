"""Capacity prices, fairness queues and model-based soft labels: exact, seeded checks, plus
logged propensities against the frequencies of re-running the same decision many times."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from allocation import BARE_OPTIONS, DelayModel, Observations, RepConfig, Router, bare_policy, make_policy
from allocation.base import Deterministic, Index, PolicyOptions, StatelessPolicy

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _trained_router(**options: Any) -> Router:
    reps = [RepConfig(id=f"r{i}", max_open=12) for i in range(1, 6)]
    router = Router(policy=bare_policy("contextual", seed=5, **options), reps=reps, delay_model=DelayModel([20, 40, 60], [3, 7, 14]))
    for i in range(80):
        now = T0 + timedelta(hours=6 * i)
        d = router.assign(f"L{i}", {"sector": "ab"[i % 2]}, now)
        if i % 3:
            router.record_outcome(f"L{i}", (d.rep in ("r2", "r4")) == (i % 2 == 0), now + timedelta(hours=1))
        if i % 8 == 7:
            router.tick(now)
    return router


@pytest.mark.parametrize("policy_options", [{"mode": "thompson"}, {"mode": "greedy"}, {"mode": "greedy", "posterior_exploration": 0.3}])
def test_given_one_state_when_choice_rerun_many_times_then_frequencies_match_logged_propensities(policy_options: dict[str, Any]) -> None:
    # Fairness queues, capacity prices and the exploration floor all shape the choice; if any
    # of them changed between computing the logged probabilities and drawing the rep, the
    # frequencies would drift from what was logged and off-policy estimates would be biased.
    router = _trained_router(**policy_options, fairness_floor=0.8, exploration_floor=0.1, capacity_price=0.05, capacity_target=0.5)
    assert any(v > 0 for v in router.adjust.prices.values()) and any(v > 0 for v in router.queues.values())
    now = T0 + timedelta(days=30)
    logged = copy.deepcopy(router).assign("NEXT", {"sector": "a"}, now).probabilities
    draws = 1_200
    counts: Counter[str | None] = Counter()
    for j in range(draws):
        clone = copy.deepcopy(router)
        clone.rng = np.random.default_rng(10_000 + j)
        counts[clone.assign("NEXT", {"sector": "a"}, now).rep] += 1
    assert set(counts) <= set(logged)
    for rep, p in logged.items():
        se = np.sqrt(p * (1 - p) / draws)
        assert abs(counts[rep] / draws - p) <= 4 * se + 1e-3, (rep, counts[rep], p)


def _bare(**options: Any) -> PolicyOptions:
    """No floors, no price unless given: the exact sequences below are worked out for that."""
    return PolicyOptions(**{**BARE_OPTIONS, **options})


class _Fixed(StatelessPolicy):
    """Known scores; records what it was fitted on; predicts fixed rates per rep."""

    name = "fixed"

    def __init__(self, options: PolicyOptions, scores: Mapping[str, float], rates: Mapping[str, float] | None = None) -> None:
        super().__init__(options)
        self.scores, self.rates = dict(scores), rates
        self.seen: Observations | None = None

    def index(self, reps: Sequence[str], context: Mapping[str, Any]) -> Index:
        return Deterministic(np.array([self.scores[r] for r in reps]))

    def fit(self, data: Observations, now: datetime) -> None:
        self.seen = data

    def predict_observed(self, keys: Sequence[str], reps: Sequence[str], contexts: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
        return None if self.rates is None else np.array([self.rates[r] for r in reps])


def test_given_capacity_price_when_best_rep_fills_up_then_price_rises_and_leads_move_early() -> None:
    def run(eta: float) -> tuple[list[str | None], dict[str, float]]:
        policy = _Fixed(_bare(capacity_price=eta, capacity_target=0.5), {"r1": 1.0, "r2": 0.7})
        router = Router(policy=policy, reps=[RepConfig(id="r1", max_open=8), RepConfig(id="r2", max_open=8)])
        return [router.assign(f"L{i}", {}, T0).rep for i in range(10)], dict(router.adjust.prices)

    unpriced, none = run(0.0)
    assert unpriced == ["r1"] * 8 + ["r2"] * 2 and none == {}
    # r1's price after its k-th lead: mu <- max(0, mu + 0.5 (k/8 - 0.5)): 0 up to k = 4, then
    # 0.0625, 0.1875, 0.375 -- above the 0.3 score gap after the 7th, so the 8th lead goes to
    # r2 while r1 still has a free slot; r1's price keeps rising by 0.1875 per decision
    priced, prices = run(0.5)
    assert priced == ["r1"] * 7 + ["r2"] * 3
    assert prices == pytest.approx({"r1": 0.375 + 3 * 0.1875, "r2": 0.0})


def test_given_model_prior_when_tick_then_open_labels_use_each_leads_prediction() -> None:
    delays = DelayModel([20, 40, 60], [3, 7, 14])
    for prior, rates in (("model", {"r1": 0.9, "r2": 0.3}), ("rate", None)):
        policy = _Fixed(_bare(), {"r1": 1.0, "r2": 0.0}, rates)
        router = Router(policy=policy, reps=[RepConfig(id="r1", max_open=1), RepConfig(id="r2")], delay_model=delays, open_prior=prior)
        router.assign("A", {}, T0)  # r1, then r1 is full
        router.assign("B", {}, T0)  # r2
        router.assign("C", {}, T0 + timedelta(days=1))  # r2
        router.record_outcome("C", False, T0 + timedelta(days=2))
        router.tick(T0 + timedelta(days=10))
        assert policy.seen is not None
        labels = dict(zip(policy.seen.keys, policy.seen.labels.tolist(), strict=True))
        assert labels["C"] == 0.0
        if rates is None:
            p = router.win_rate_estimate(T0 + timedelta(days=10)).delay_corrected
            assert labels["A"] == pytest.approx(float(delays.soft_label(p, 10.0)))
            assert labels["A"] == pytest.approx(labels["B"])
        else:
            assert labels["A"] == pytest.approx(float(delays.soft_label(0.9, 10.0)))
            assert labels["B"] == pytest.approx(float(delays.soft_label(0.3, 10.0)))


def test_given_capacity_price_state_when_round_tripped_then_prices_kept_and_old_state_loads() -> None:
    router = _trained_router(capacity_price=0.05, capacity_target=0.5)
    state = router.to_state()
    clone = Router.from_state(state)
    assert clone.adjust.prices == router.adjust.prices and clone.policy.options.capacity_price == 0.05
    old = {**state, "policy": {**state["policy"], "options": {k: v for k, v in state["policy"]["options"].items() if not k.startswith("capacity")}}}
    del old["prices"], old["open_prior"]
    legacy = Router.from_state(old)
    assert legacy.adjust.prices == {} and legacy.policy.options.capacity_price == 0.0 and legacy.open_prior == "model"
    with pytest.raises(ValueError, match="open_prior"):
        Router(policy=make_policy("contextual"), reps=[RepConfig(id="r1")], open_prior="closed")
    with pytest.raises(ValueError, match="capacity_target"):
        make_policy("contextual", capacity_target=1.5)
