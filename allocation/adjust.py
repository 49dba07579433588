"""Score adjustments made before the choice: fairness queues and capacity prices.

Both are deterministic functions of the decision history, added to every eligible rep's
index before ``allocation.propensity`` turns it into choice probabilities — so the logged
propensities stay exact.

Fairness (routing.md): a virtual queue per rep, Q_a ← max(0, Q_a + r_a − 1{a chosen}) with
r_a the rep's floor share of the decision; the bonus is ``fairness_scale · Q_a``.

Capacity price: a dual variable per capped rep, μ_a ← [μ_a + η(open_a / C_a − ρ)]₊ after every
decision, subtracted from the score. Without it a greedy policy fills its best reps with
whatever arrives first and then routes the rest to whoever is free; with it a rep running
near its cap only takes the leads where its advantage over the next rep exceeds μ_a, so its
limited capacity goes where its comparative advantage is largest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from allocation.base import PolicyOptions
from allocation.constraints import RepConfig


class Adjuster:
    """Fairness queue lengths and capacity prices per rep (JSON-ready floats)."""

    def __init__(self) -> None:
        self.queues: dict[str, float] = {}
        self.prices: dict[str, float] = {}

    def bonus(self, eligible: Sequence[str], options: PolicyOptions, fairness_scale: float, capacity_price: float) -> np.ndarray | None:
        """What to add to each eligible rep's score (None when nothing applies)."""
        fair = options.fairness_floor > 0
        priced = capacity_price > 0 and bool(self.prices)
        if not fair and not priced:
            return None
        out = np.zeros(len(eligible))
        if fair:
            out += fairness_scale * np.array([self.queues.get(r, 0.0) for r in eligible])
        if priced:
            out -= np.array([self.prices.get(r, 0.0) for r in eligible])
        return out

    def update(
        self, eligible: Sequence[str], chosen: str, reps: Mapping[str, RepConfig], load: Mapping[str, int], options: PolicyOptions, capacity_price: float
    ) -> None:
        """After a decision: the chosen rep pays one lead back; prices follow the open load (``capacity_price``: η, the policy's)."""
        floor = options.fairness_floor
        if floor > 0:
            # each decision owes every eligible rep its floor share (by weight); reps that were
            # not eligible (away, full, out of territory) accrue nothing: no burst on return
            total = sum(reps[r].weight for r in eligible)
            for r in eligible:
                self.queues[r] = self.queues.get(r, 0.0) + floor * reps[r].weight / total
            self.queues[chosen] = max(self.queues[chosen] - 1.0, 0.0)
        eta = capacity_price
        if eta > 0:
            for rid, rep in reps.items():
                if rep.max_open:
                    mu = self.prices.get(rid, 0.0) + eta * (load.get(rid, 0) / rep.max_open - options.capacity_target)
                    self.prices[rid] = max(mu, 0.0)

    def to_state(self) -> dict[str, Any]:
        """JSON form."""
        return {"queues": dict(self.queues), "prices": dict(self.prices)}

    def load(self, queues: Mapping[str, Any], prices: Mapping[str, Any]) -> None:
        """Restore (``prices`` is absent in state written before capacity prices existed)."""
        self.queues = {str(k): float(v) for k, v in queues.items()}
        self.prices = {str(k): float(v) for k, v in prices.items()}
