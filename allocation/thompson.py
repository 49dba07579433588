"""Beta-Bernoulli Thompson sampling over reps (context-free)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from allocation.base import BetaIndex, Context, Index, Observations, Policy, PolicyOptions
from allocation.counts import RepCounts


class BetaThompson(Policy):
    """Each rep's win rate ~ Beta(prior_a + wins, prior_b + losses); choose by posterior draw.

    Soft labels of open assignments count as fractional wins and losses, so a rep's open
    pipeline is neither ignored nor counted as lost.
    """

    name = "thompson"
    default_fairness_scale = 0.05

    def __init__(self, options: PolicyOptions, prior_a: float = 1.0, prior_b: float = 1.0) -> None:
        super().__init__(options)
        if prior_a <= 0 or prior_b <= 0:
            raise ValueError(f"Beta prior parameters must be positive, got a={prior_a}, b={prior_b}")
        self.prior_a = float(prior_a)
        self.prior_b = float(prior_b)
        self.counts = RepCounts()

    def fit(self, data: Observations, now: datetime) -> None:
        """Recount wins and losses per rep."""
        self.counts.fit(data)

    def index(self, reps: Sequence[str], context: Context) -> Index:
        """Posterior Beta parameters of each rep."""
        n, wins = self.counts.arrays(tuple(reps))
        return BetaIndex(self.prior_a + wins, self.prior_b + np.maximum(n - wins, 0.0))

    def params(self) -> dict[str, Any]:
        """Prior pseudo-counts."""
        return {"prior_a": self.prior_a, "prior_b": self.prior_b}

    def fitted_state(self) -> dict[str, Any]:
        """Counts per rep."""
        return self.counts.to_state()

    def load_fitted_state(self, state: Mapping[str, Any]) -> None:
        """Restore counts."""
        self.counts.load(state)
