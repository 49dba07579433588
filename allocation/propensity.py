"""Index -> choice probabilities over eligible reps, exactly, for every policy.

Thompson sampling picks the rep whose sampled score is highest. With independent score
distributions the probability of that event has a one-dimensional integral,
P(a wins) = ∫ Π_{b≠a} F_b(x) dF_a(x), evaluated here on a grid in CDF space (the mass of each
cell comes from CDF differences, so even a very confident rep is integrated exactly). Drawing
the rep from these probabilities is the same distribution as drawing scores and taking the
argmax, so the logged propensity is the probability the rep was really chosen with — not a
Monte-Carlo estimate. ``method="mc"`` draws scores instead (kept to cross-check, ±0.01 at
10,000 draws).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, log_ndtr, ndtr

from allocation.base import BetaIndex, Deterministic, GaussianIndex, Index

_beta_cdf_cache: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
_Z = np.array([-1.5, 0.0, 1.5])
_SPAN = 8.0  # standard deviations beyond which a score's CDF is taken as exactly 0 or 1


def _beta_cdf(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    # Beta parameters change only when the policy is refit (daily), so each rep's CDF on a
    # local grid is cached: betainc is ~100x dearer than an interpolation.
    key = (round(float(a), 9), round(float(b), 9))
    hit = _beta_cdf_cache.get(key)
    if hit is None:
        if len(_beta_cdf_cache) > 20_000:
            _beta_cdf_cache.clear()
        mean = a / (a + b)
        sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
        grid = np.linspace(max(mean - _SPAN * sd, 0.0), min(mean + _SPAN * sd, 1.0), 513)
        hit = (grid, betainc(key[0], key[1], grid))
        _beta_cdf_cache[key] = hit
    return hit


def _from_cdfs(cdf: np.ndarray) -> np.ndarray:
    """P(rep a has the maximum) from CDFs evaluated on a common increasing grid (K x G)."""
    mass = np.diff(cdf, axis=1)  # P(score_a in cell)
    mid = np.clip(0.5 * (cdf[:, 1:] + cdf[:, :-1]), 1e-300, 1.0)
    log_mid = np.log(mid)
    others = log_mid.sum(axis=0, keepdims=True) - log_mid
    probs = (mass * np.exp(others)).sum(axis=1)
    total = probs.sum()
    return probs / total if total > 0 else np.full(len(probs), 1.0 / len(probs))


def _gaussian_probs(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    sd = np.maximum(sd, 1e-9)
    live = np.flatnonzero(mean + _SPAN * sd >= np.max(mean - _SPAN * sd))
    probs = np.zeros(len(mean))
    if len(live) == 1:
        probs[live[0]] = 1.0
        return probs
    probs[live] = _gaussian_live(mean[live], sd[live])
    return probs


def _gaussian_live(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    lo = float(np.min(mean - _SPAN * sd))
    hi = float(np.max(mean + _SPAN * sd))
    # a uniform grid plus points around each rep so a narrow posterior still gets cells
    grid = np.unique(np.concatenate([np.linspace(lo, hi, 129), (mean[:, None] + sd[:, None] * _Z).ravel()]))
    z = (grid[None, :] - mean[:, None]) / sd[:, None]
    mass = np.diff(ndtr(z), axis=1)
    zm = 0.5 * (z[:, 1:] + z[:, :-1])
    log_mid = log_ndtr(zm)
    others = log_mid.sum(axis=0, keepdims=True) - log_mid
    probs = (mass * np.exp(others)).sum(axis=1)
    return probs / probs.sum()


def _beta_probs(a: np.ndarray, b: np.ndarray, bonus: np.ndarray) -> np.ndarray:
    cached = [_beta_cdf(ai, bi) for ai, bi in zip(a, b, strict=True)]
    lo = np.array([g[0] for g, _ in cached]) + bonus
    hi = np.array([g[-1] for g, _ in cached]) + bonus
    # a rep whose best plausible score is below another's worst plausible one cannot win
    live = np.flatnonzero(hi >= lo.max())
    probs = np.zeros(len(a))
    if len(live) == 1:
        probs[live[0]] = 1.0
        return probs
    # CDF differences give each cell its exact mass, so a uniform grid is enough even for
    # a narrow posterior; the error is the variation of the other CDFs within a cell.
    grid = np.linspace(lo[live].min(), hi[live].max(), 401)
    cdf = np.vstack([np.interp(grid - bonus[i], cached[i][0], cached[i][1], left=0.0, right=1.0) for i in live])
    probs[live] = _from_cdfs(cdf)
    return probs


def _mc_probs(index: Index, bonus: np.ndarray, rng: np.random.Generator, draws: int) -> np.ndarray:
    k = len(bonus)
    if isinstance(index, GaussianIndex):
        scores = rng.normal(index.mean, np.maximum(index.sd, 1e-9), size=(draws, k))
    elif isinstance(index, BetaIndex):
        scores = rng.beta(index.a, index.b, size=(draws, k))
    else:
        raise TypeError("Monte-Carlo propensities apply to random indices only")
    wins = np.bincount(np.argmax(scores + bonus, axis=1), minlength=k)
    return wins / draws


def choice_probabilities(
    index: Index,
    bonus: np.ndarray | None = None,
    exploration_floor: float = 0.0,
    *,
    posterior_share: float = 0.0,
    method: str = "exact",
    rng: np.random.Generator | None = None,
    draws: int = 10_000,
) -> np.ndarray:
    """Probability of choosing each eligible rep (sums to 1).

    ``bonus`` is added to each rep's score (the fairness queues); ``exploration_floor`` mixes
    in the uniform distribution so each rep gets at least ``floor / K``; ``posterior_share``
    mixes in Thompson sampling over a deterministic index that carries posterior SDs.
    """
    k = _size(index)
    if k == 0:
        raise ValueError("no eligible reps to choose from")
    bonus = np.zeros(k) if bonus is None else np.asarray(bonus, dtype=float)
    if isinstance(index, Deterministic):
        scores = np.asarray(index.scores, dtype=float) + bonus
        probs = np.zeros(k)
        probs[int(np.argmax(scores))] = 1.0
        if posterior_share > 0 and index.sd is not None and k > 1:
            sampled = _gaussian_probs(scores, np.asarray(index.sd, dtype=float))
            probs = (1.0 - posterior_share - exploration_floor) * probs + posterior_share * sampled
            return probs + exploration_floor / k
    elif k == 1:
        probs = np.ones(1)
    elif method == "mc":
        probs = _mc_probs(index, bonus, rng if rng is not None else np.random.default_rng(0), draws)
    elif isinstance(index, GaussianIndex) and _symmetric(index, bonus):
        probs = np.full(k, 1.0 / k)  # exchangeable scores: exactly uniform
    elif isinstance(index, GaussianIndex):
        probs = _gaussian_probs(np.asarray(index.mean, dtype=float) + bonus, np.asarray(index.sd, dtype=float))
    else:
        probs = _beta_probs(np.asarray(index.a, dtype=float), np.asarray(index.b, dtype=float), bonus)
    if exploration_floor > 0:
        probs = (1.0 - exploration_floor) * probs + exploration_floor / k
    return probs


def _size(index: Index) -> int:
    if isinstance(index, Deterministic):
        return len(index.scores)
    if isinstance(index, GaussianIndex):
        return len(index.mean)
    return len(index.a)


def _symmetric(index: GaussianIndex, bonus: np.ndarray) -> bool:
    mean = np.asarray(index.mean, dtype=float) + bonus
    sd = np.asarray(index.sd, dtype=float)
    return bool(np.all(mean == mean[0]) and np.all(sd == sd[0]))
