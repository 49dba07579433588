"""Per-rep weighted counts shared by the context-free bandits (UCB1, Beta Thompson)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from allocation.base import Observations


class RepCounts:
    """Weighted number of observations and of wins per rep (soft labels count fractionally)."""

    def __init__(self) -> None:
        self.n: dict[str, float] = {}
        self.wins: dict[str, float] = {}

    def fit(self, data: Observations) -> None:
        """Recount from scratch (discounting is already in the weights)."""
        names = sorted(set(data.reps))
        pos = {r: i for i, r in enumerate(names)}
        idx = np.array([pos[r] for r in data.reps], dtype=int)
        n = np.bincount(idx, weights=data.weights, minlength=len(names)) if len(idx) else np.zeros(0)
        w = np.bincount(idx, weights=data.weights * data.labels, minlength=len(names)) if len(idx) else np.zeros(0)
        self.n = {r: float(n[i]) for r, i in pos.items()}
        self.wins = {r: float(w[i]) for r, i in pos.items()}

    def arrays(self, reps: list[str] | tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(n, wins) for these reps, zeros for reps never seen."""
        return (np.array([self.n.get(r, 0.0) for r in reps]), np.array([self.wins.get(r, 0.0) for r in reps]))

    def to_state(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {"n": dict(self.n), "wins": dict(self.wins)}

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore ``to_state`` output."""
        self.n = {str(k): float(v) for k, v in state.get("n", {}).items()}
        self.wins = {str(k): float(v) for k, v in state.get("wins", {}).items()}
