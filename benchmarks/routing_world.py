"""The simulated year behind benchmarks/routing.py, calibrated on the public CRM sample.

Poisson(27/day) leads for 365 days, (sector, product) from the sample's empirical mix, truth
p(rep, x) = σ(logit p̄ + α_rep + γ_rep,sector + δ_rep,product) with the scenario's spreads,
outcome delays bootstrapped from the sample's won / lost engage-to-close times; plus the
oracle policy and the day-30 estimator replications.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocation import BARE_OPTIONS, DelayModel
from allocation.base import Deterministic, Index, PolicyOptions, StatelessPolicy
from allocation.rewards import delay_corrected_rate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "crm-sales-opportunities"
SCENARIOS = {"flat": (0.05, 0.0), "upper95": (0.14, 0.19), "strong": (0.3, 0.4)}
REPS, RATE, DAYS, Q4_START = 30, 27.0, 365, 273
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Sample:
    """What the simulator takes from the CRM sample."""

    mix: list[tuple[str, str]]
    mix_p: np.ndarray
    win_rate: float
    won_days: np.ndarray
    lost_days: np.ndarray


def load_sample(path: Path = DATA) -> Sample:
    """Read the pipeline and accounts; fix the sample's typos (``technolgy``, ``GTXPro``)."""
    pipe = pd.read_csv(path / "sales_pipeline.csv")
    acc = pd.read_csv(path / "accounts.csv")[["account", "sector"]]
    acc["sector"] = acc["sector"].replace({"technolgy": "technology"})
    pipe["product"] = pipe["product"].replace({"GTXPro": "GTX Pro"})
    df = pipe.merge(acc, on="account", how="inner")
    closed = pipe[pipe["deal_stage"].isin(["Won", "Lost"])].copy()
    days = (pd.to_datetime(closed["close_date"]) - pd.to_datetime(closed["engage_date"])).dt.days.to_numpy(dtype=float)
    won = closed["deal_stage"].to_numpy() == "Won"
    mix = df.groupby(["sector", "product"]).size()
    return Sample(list(mix.index), (mix / mix.sum()).to_numpy(), float(won.mean()), days[won], days[~won])


class Oracle(StatelessPolicy):
    """Knows the truth: the eligible rep with the highest true win probability.

    Scores are true logits, so with ``options`` (fairness floor, capacity price at the
    contextual policy's settings) it shows what perfect knowledge achieves under the same rules;
    without, it follows no rule at all (``BARE_OPTIONS``: no floors, no price).
    """

    name = "oracle"
    default_fairness_scale = 0.5

    def __init__(self, truth: Mapping[tuple[str, str, str], float], options: PolicyOptions | None = None) -> None:
        super().__init__(options or PolicyOptions(**BARE_OPTIONS))
        self.truth = {k: math.log(v / (1 - v)) for k, v in truth.items()}

    def index(self, reps: Sequence[str], context: Mapping[str, Any]) -> Index:
        return Deterministic(np.array([self.truth[(r, context["sector"], context["product"])] for r in reps]))


def make_world(sample: Sample, scenario: str, seed: int, days: int = DAYS) -> dict[str, Any]:
    """Truth table, lead stream and per-lead random draws shared by all policies."""
    rng = np.random.default_rng(seed)
    s_alpha, s_seg = SCENARIOS[scenario]
    sectors = sorted({s for s, _ in sample.mix})
    products = sorted({p for _, p in sample.mix})
    reps = [f"rep{i:02d}" for i in range(REPS)]
    alpha = rng.normal(0, s_alpha, REPS)
    gamma = rng.normal(0, s_seg, (REPS, len(sectors)))
    delta = rng.normal(0, s_seg, (REPS, len(products)))
    base = math.log(sample.win_rate / (1 - sample.win_rate))
    truth = {
        (r, s, p): 1 / (1 + math.exp(-(base + alpha[i] + gamma[i, j] + delta[i, k])))
        for i, r in enumerate(reps)
        for j, s in enumerate(sectors)
        for k, p in enumerate(products)
    }
    counts = rng.poisson(RATE, days)
    day = np.repeat(np.arange(days), counts)
    n = len(day)
    # each lead at a uniform moment of its day. (Adding year-sorted fractions to the sorted days,
    # as this once did, put January's leads at the start of their day and December's at the
    # end; with whole-day delays that skewed which leads had closed at a day boundary.)
    times = np.sort(day + rng.random(n))
    seg = rng.choice(len(sample.mix), size=n, p=sample.mix_p)
    return {
        "reps": reps,
        "truth": truth,
        "times": times,
        "segments": [sample.mix[i] for i in seg],
        "u_win": rng.random(n),
        "u_won_delay": rng.integers(0, len(sample.won_days), n),
        "u_lost_delay": rng.integers(0, len(sample.lost_days), n),
    }


def day30_replications(sample: Sample, scenario: str, worlds: int = 200, seed: int = 0) -> dict[str, float]:
    """The day-30 delay-corrected estimate on many simulated first months (random routing).

    One run gives one draw of the day-30 error; at day 30 most wins are still open (median
    57 days to close), so a single draw is noisy. Many cheap replications separate the
    estimator's bias (what a correction can fix) from that noise floor (what it cannot).
    """
    model = DelayModel(sample.won_days, sample.lost_days)
    rng = np.random.default_rng(seed)
    s_alpha, s_seg = SCENARIOS[scenario]
    spread = math.sqrt(s_alpha**2 + 2 * s_seg**2)
    base = math.log(sample.win_rate / (1 - sample.win_rate))
    errors, naive = [], []
    for _ in range(worlds):
        n = rng.poisson(RATE * 30)
        age = 30.0 - rng.uniform(0.0, 30.0, n)
        p = 1.0 / (1.0 + np.exp(-(base + rng.normal(0.0, spread, n))))
        won = rng.random(n) < p
        delay = np.where(won, sample.won_days[rng.integers(0, len(sample.won_days), n)], sample.lost_days[rng.integers(0, len(sample.lost_days), n)])
        closed = np.maximum(delay, 0.01) <= age
        est = delay_corrected_rate(won[closed].astype(float), age[~closed], model)
        errors.append(100 * (est - won.mean()))
        naive.append(100 * (won[closed].mean() - won.mean()))
    err = np.asarray(errors)
    return {
        "worlds": worlds,
        "bias_pp": float(err.mean()),
        "bias_se_pp": float(err.std(ddof=1) / np.sqrt(worlds)),
        "sd_pp": float(err.std(ddof=1)),
        "share_within_1pp": float(np.mean(np.abs(err) <= 1.0)),
        "closed_only_bias_pp": float(np.mean(naive)),
    }
