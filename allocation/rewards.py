"""Delayed rewards: survival-based soft labels for assignments that are still open.

Won deals take longer to close than lost ones (public CRM sample: median 57 vs 14 days), so
counting only closed deals makes every win rate look low for weeks, and counting open ones as
losses is worse. For an open assignment of age d with prior win probability p, and S_W, S_L
the survival functions of time-to-close for won and lost deals (from matured history):

    w = p·S_W(d) / (p·S_W(d) + (1 − p)·S_L(d))

is P(won | still open at age d). The overall rate solves p = (Σ_closed y + Σ_open w(p)) / n.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class DelayModel:
    """Empirical time-to-close distributions of won and lost deals, in days."""

    def __init__(self, won_days: Sequence[float], lost_days: Sequence[float]) -> None:
        won = np.sort(np.asarray(won_days, dtype=float))
        lost = np.sort(np.asarray(lost_days, dtype=float))
        if len(won) == 0 or len(lost) == 0:
            raise ValueError("a delay model needs at least one won and one lost time-to-close")
        if np.any(won < 0) or np.any(lost < 0):
            raise ValueError("times to close must be >= 0 days (closed before assigned?)")
        self.won = won
        self.lost = lost

    @staticmethod
    def _survival(sorted_days: np.ndarray, age: np.ndarray) -> np.ndarray:
        # (count beyond d + 0.5) / (n + 1): never exactly 0, so a lead older than every
        # observed loss gets w close to (not exactly) 1 and the formula never divides 0 by 0.
        beyond = len(sorted_days) - np.searchsorted(sorted_days, age, side="right")
        return (beyond + 0.5) / (len(sorted_days) + 1.0)

    def survival_won(self, age_days: np.ndarray | float) -> np.ndarray:
        """S_W(d) = P(a won deal is still open after d days)."""
        return self._survival(self.won, np.asarray(age_days, dtype=float))

    def survival_lost(self, age_days: np.ndarray | float) -> np.ndarray:
        """S_L(d) = P(a lost deal is still open after d days)."""
        return self._survival(self.lost, np.asarray(age_days, dtype=float))

    def soft_label(self, p: np.ndarray | float, age_days: np.ndarray | float) -> np.ndarray:
        """P(won | open at age d) for prior win probability p."""
        p = np.asarray(p, dtype=float)
        sw = p * self.survival_won(age_days)
        return sw / (sw + (1.0 - p) * self.survival_lost(age_days))

    def to_state(self) -> dict[str, Any]:
        """JSON form (the samples, rounded to minutes)."""
        return {"won_days": np.round(self.won, 4).tolist(), "lost_days": np.round(self.lost, 4).tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DelayModel:
        """Inverse of ``to_state``."""
        return cls(state["won_days"], state["lost_days"])


@dataclass(frozen=True)
class WinRateEstimate:
    """Win rate of assigned leads so far: delay-corrected and naive closed-only."""

    delay_corrected: float
    closed_only: float
    n_closed: int
    n_open: int


def delay_corrected_rate(
    closed_labels: np.ndarray,
    open_ages: np.ndarray,
    model: DelayModel,
    open_extra: np.ndarray | None = None,
    proxy_weight: float = 0.0,
    tol: float = 1e-10,
) -> float:
    """Solve p = (Σ closed y + Σ open label(p)) / n by fixed-point iteration.

    ``open_extra`` marks open assignments with an early proxy (opportunity created); their
    label is ``proxy_weight + (1 − proxy_weight)·w``.
    """
    n = len(closed_labels) + len(open_ages)
    if n == 0:
        return float("nan")
    closed_sum = float(np.sum(closed_labels))
    # survival curves do not depend on p: evaluate them once, not at every iteration
    ages = np.asarray(open_ages, dtype=float)
    s_won, s_lost = model.survival_won(ages), model.survival_lost(ages)
    lift = proxy_weight if open_extra is not None and proxy_weight > 0 else 0.0
    marked = np.asarray(open_extra, dtype=bool) if lift > 0 else np.zeros(len(ages), dtype=bool)
    p = (closed_sum + 0.5 * len(ages)) / n
    for _ in range(500):
        w = p * s_won / (p * s_won + (1.0 - p) * s_lost)
        w = np.where(marked, lift + (1.0 - lift) * w, w)
        new = (closed_sum + float(w.sum())) / n
        if abs(new - p) < tol:
            return new
        p = new
    return p


def open_labels(
    p: float | np.ndarray,
    ages: np.ndarray,
    model: DelayModel,
    proxy: np.ndarray | None = None,
    proxy_weight: float = 0.0,
) -> np.ndarray:
    """Soft labels of open assignments, lifted toward 1 where the early proxy fired."""
    w = model.soft_label(p, ages)
    if proxy is not None and proxy_weight > 0:
        w = np.where(proxy, proxy_weight + (1.0 - proxy_weight) * w, w)
    return w
