"""UCB1 over reps — the seed's formula, corrected.

The seed wrote ``r_a + c*sqrt(ln n / n_a)`` with r_a the *sum* of rewards, divided by zero for
a rep never chosen and took ``log(0)`` before the first assignment. Here: reps without
observations come first (in configuration order), then mean_a + c·sqrt(2 ln N / n_a) with the
mean, N = all observations (at least 1). Counts are weighted, so ``discount`` < 1 gives
discounted UCB (Garivier & Moulines 2011).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from allocation.base import Context, Deterministic, Index, Observations, Policy, PolicyOptions
from allocation.counts import RepCounts

_UNSEEN = 1e-9


class UCB1(Policy):
    """Upper confidence bound on each rep's win rate; deterministic given the counts."""

    name = "ucb1"
    default_fairness_scale = 0.05

    def __init__(self, options: PolicyOptions, c: float = 1.0) -> None:
        super().__init__(options)
        if c < 0:
            raise ValueError(f"ucb1 exploration constant c must be >= 0, got {c}")
        self.c = float(c)
        self.counts = RepCounts()

    def fit(self, data: Observations, now: datetime) -> None:
        """Recount wins and observations per rep."""
        self.counts.fit(data)

    def index(self, reps: Sequence[str], context: Context) -> Index:
        """Unseen reps score +inf; the rest mean + c·sqrt(2 ln N / n)."""
        n, wins = self.counts.arrays(tuple(reps))
        total = max(sum(self.counts.n.values()), 1.0)
        seen = n > _UNSEEN
        scores = np.full(len(reps), np.inf)
        scores[seen] = wins[seen] / n[seen] + self.c * np.sqrt(2.0 * np.log(total) / n[seen])
        return Deterministic(scores)

    def predict(self, reps: Sequence[str], context: Context) -> np.ndarray:
        """Smoothed win rate per rep."""
        n, wins = self.counts.arrays(tuple(reps))
        return (wins + 1.0) / (n + 2.0)

    def params(self) -> dict[str, Any]:
        """The exploration constant."""
        return {"c": self.c}

    def fitted_state(self) -> dict[str, Any]:
        """Counts per rep."""
        return self.counts.to_state()

    def load_fitted_state(self, state: Mapping[str, Any]) -> None:
        """Restore counts."""
        self.counts.load(state)
