"""Evaluation metrics for probabilities of conversion (pure functions of labels and scores).

- ``roc_auc``: ranking quality; ``pr_auc``: average precision (area under precision-recall);
- ``brier``: mean squared error of the probability;
- ``ece``: expected calibration error over 10 **equal-width** bins of the predicted probability
  (``sum_k n_k/n * |mean(y)_k - mean(p)_k|``; p = 1.0 falls in the last bin);
- ``lift_top_decile``: conversion rate among the top 10% by score over the overall rate;
- ``reliability_table``: per bin ``lo, hi, n, mean_predicted, fraction_positive``.

Scores with a single class in ``y`` have no ROC-AUC or PR-AUC: those come back as NaN.
``ece_noise_floor`` simulates the ECE a *perfectly* calibrated model would show on a sample of
this size and shape — useful to read an ECE: below the floor is luck, not skill.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _arrays(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=float).ravel()
    pa = np.asarray(p, dtype=float).ravel()
    if ya.shape != pa.shape:
        raise ValueError(f"labels and probabilities differ in length: {ya.size} vs {pa.size}")
    if ya.size == 0:
        raise ValueError("no rows to evaluate")
    return ya, pa


def roc_auc(y: Any, p: Any) -> float:
    """Area under the ROC curve (NaN with one class)."""
    from sklearn.metrics import roc_auc_score

    ya, pa = _arrays(y, p)
    return float(roc_auc_score(ya, pa)) if np.unique(ya).size == 2 else math.nan


def pr_auc(y: Any, p: Any) -> float:
    """Average precision (NaN with one class)."""
    from sklearn.metrics import average_precision_score

    ya, pa = _arrays(y, p)
    return float(average_precision_score(ya, pa)) if np.unique(ya).size == 2 else math.nan


def brier(y: Any, p: Any) -> float:
    """Mean squared error between probability and outcome."""
    ya, pa = _arrays(y, p)
    return float(np.mean((pa - ya) ** 2))


def _bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    return np.minimum((np.clip(p, 0, 1) * n_bins).astype(int), n_bins - 1)


def reliability_table(y: Any, p: Any, n_bins: int = 10) -> list[dict[str, float]]:
    """Per equal-width bin: ``lo``, ``hi``, ``n``, ``mean_predicted``, ``fraction_positive`` (empty bins kept)."""
    ya, pa = _arrays(y, p)
    bins = _bins(pa, n_bins)
    rows = []
    for k in range(n_bins):
        m = bins == k
        n = int(m.sum())
        rows.append({"lo": k / n_bins, "hi": (k + 1) / n_bins, "n": n,
                     "mean_predicted": float(pa[m].mean()) if n else math.nan,
                     "fraction_positive": float(ya[m].mean()) if n else math.nan})
    return rows


def ece(y: Any, p: Any, n_bins: int = 10) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins."""
    ya, pa = _arrays(y, p)
    bins = _bins(pa, n_bins)
    total = 0.0
    for k in np.unique(bins):
        m = bins == k
        total += m.mean() * abs(ya[m].mean() - pa[m].mean())
    return float(total)


def lift_top_decile(y: Any, p: Any) -> float:
    """Conversion rate of the top 10% by probability divided by the overall rate (NaN if no positives)."""
    ya, pa = _arrays(y, p)
    base = ya.mean()
    if base == 0:
        return math.nan
    k = max(1, int(math.ceil(0.1 * ya.size)))
    top = np.argsort(-pa, kind="stable")[:k]
    return float(ya[top].mean() / base)


def ece_null_draws(p: Any, n_bins: int = 10, draws: int = 200, seed: int = 0) -> np.ndarray:
    """ECEs of a perfectly calibrated model with these predictions (labels drawn as Bernoulli(p))."""
    pa = np.clip(np.asarray(p, dtype=float).ravel(), 0, 1)
    rng = np.random.default_rng(seed)
    return np.array([ece((rng.random(pa.size) < pa).astype(float), pa, n_bins) for _ in range(draws)])


def ece_noise_floor(p: Any, n_bins: int = 10, draws: int = 200, seed: int = 0) -> float:
    """Mean ECE of a perfectly calibrated model with these predictions (see ``ece_null_draws``)."""
    return float(np.mean(ece_null_draws(p, n_bins, draws, seed)))


def evaluate(y: Any, p: Any) -> dict[str, float]:
    """All scalar metrics at once: ``roc_auc, pr_auc, brier, ece, lift_top_decile, n, positives``."""
    ya, pa = _arrays(y, p)
    return {"roc_auc": roc_auc(ya, pa), "pr_auc": pr_auc(ya, pa), "brier": brier(ya, pa), "ece": ece(ya, pa),
            "lift_top_decile": lift_top_decile(ya, pa), "n": int(ya.size), "positives": int(ya.sum())}
