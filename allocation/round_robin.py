"""Round robin that stays fair when reps come and go: a weighted virtual clock.

A rotating index (the usual implementation) hands a returning rep the leads "missed" while
away, or skips someone after a vacation. Here each rep carries a virtual finish time; the
eligible rep with the smallest finish gets the lead, and a rep who was away (or is new)
restarts from the current virtual time, so they get the next lead and then rejoin the
rotation — no burst, no starvation (weighted fair queueing, one lead = 1/weight units).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from allocation.base import (
    Context,
    Deterministic,
    GaussianIndex,
    Index,
    Policy,
    PolicyOptions,
    StatelessPolicy,
)


class RoundRobin(Policy):
    """Least-recently-served rotation by virtual clock; ``RepConfig.weight`` scales the share."""

    name = "round_robin"
    default_fairness_scale = 1.0

    def __init__(self, options: PolicyOptions) -> None:
        super().__init__(options)
        self.finish: dict[str, float] = {}
        self.virtual_time = 0.0
        self.weights: dict[str, float] = {}
        self.last: dict[str, int] = {}  # assignment counter, breaks finish-time ties
        self.count = 0

    def configure_reps(self, weights: Mapping[str, float]) -> None:
        """Take each rep's share weight from its configuration."""
        self.weights = {rep: float(w) for rep, w in weights.items()}

    def _finish_if_chosen(self, rep: str) -> float:
        start = max(self.finish.get(rep, self.virtual_time), self.virtual_time)
        return start + 1.0 / self.weights.get(rep, 1.0)

    def index(self, reps: Sequence[str], context: Context) -> Index:
        """Earliest virtual finish first, ties to the least recently assigned (as ranks)."""
        keys = [(self._finish_if_chosen(r), self.last.get(r, -1)) for r in reps]
        order = sorted(range(len(reps)), key=lambda i: keys[i])
        scores = np.zeros(len(reps))
        scores[order] = -np.arange(len(reps), dtype=float)
        return Deterministic(scores)

    def on_assign(self, rep: str, context: Context, now: datetime) -> None:
        """Advance the chosen rep's clock and the system's virtual time."""
        start = max(self.finish.get(rep, self.virtual_time), self.virtual_time)
        self.finish[rep] = start + 1.0 / self.weights.get(rep, 1.0)
        self.virtual_time = start
        self.last[rep] = self.count
        self.count += 1

    def params(self) -> dict[str, Any]:
        """No parameters beyond the common options."""
        return {}

    def fitted_state(self) -> dict[str, Any]:
        """Clocks (weights come from the rep configuration)."""
        return {"finish": dict(self.finish), "virtual_time": self.virtual_time, "weights": dict(self.weights), "last": dict(self.last), "count": self.count}

    def load_fitted_state(self, state: Mapping[str, Any]) -> None:
        """Restore the clocks."""
        self.finish = {str(k): float(v) for k, v in state.get("finish", {}).items()}
        self.virtual_time = float(state.get("virtual_time", 0.0))
        self.weights = {str(k): float(v) for k, v in state.get("weights", {}).items()}
        self.last = {str(k): int(v) for k, v in state.get("last", {}).items()}
        self.count = int(state.get("count", 0))


class UniformRandom(StatelessPolicy):
    """Every eligible rep equally likely: the baseline that logs the most explorable data."""

    name = "random"

    def index(self, reps: Sequence[str], context: Context) -> Index:
        """Exchangeable scores, hence exactly uniform choice probabilities."""
        return GaussianIndex(np.zeros(len(reps)), np.ones(len(reps)))
