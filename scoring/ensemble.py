"""The raw model behind ``LeadScorer``: cross-fitted candidates, blend choice and calibration.

``fit_ensemble(featurizer, feats, y, config, seed)`` does, on the training part only:

1. Split it into ``config.folds`` stratified folds. Per fold, fit on the other folds
   (a) a one-hot + spline logistic regression (L2, ``lr_c``) and (b) a
   ``HistGradientBoostingClassifier`` with native categoricals and early stopping, and
   predict the held-out fold: every training row gets an out-of-fold (OOF) logit from each.
2. Candidates are logit blends ``w * hgb + (1 - w) * lr`` for ``w`` in ``blend_weights``
   (``w = 0`` is the logistic model alone, ``w = 1`` boosting alone); the one with the lowest
   OOF log loss after a Platt fit wins.
3. Calibration is fitted on the OOF logits of the chosen blend (held-out data for every row):
   sigmoid (Platt) or isotonic, whichever has the lower Brier score in a cross-validation
   over the OOF rows (``calibration="auto"``; isotonic only from 500 rows on, it overfits less).
4. The model used later averages the fold models' logits (a bagged ensemble) and applies the
   calibrator to that average.

``raw_logit(featurizer, feats)`` is the uncalibrated ensemble logit: the reasons are
differences of it, the probability is ``calibrator(raw_logit)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.features import Features, Featurizer


@dataclass(frozen=True)
class ModelConfig:
    """Model choices. Defaults were tuned on the x-education benchmark (see benchmarks/scoring_quality.py)."""

    folds: int = 5
    blend_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    lr_c: float = 0.5
    hgb_learning_rate: float = 0.03
    hgb_max_iter: int = 500
    hgb_max_leaf_nodes: int = 8
    hgb_l2: float = 3.0
    hgb_min_samples_leaf: int = 30
    calibration: str = "auto"  # auto | sigmoid | isotonic
    # One thread: fits are small and a daemon shares its box; OpenMP on a busy 2-core machine
    # was measured 20x slower than a single thread.
    n_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.calibration not in ("auto", "sigmoid", "isotonic"):
            raise ValueError(f"calibration must be auto, sigmoid or isotonic, got {self.calibration!r}")
        if self.folds < 2 or not self.blend_weights or not all(0 <= w <= 1 for w in self.blend_weights):
            raise ValueError("folds must be >= 2 and blend_weights non-empty values in [0, 1]")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def tree_matrix(feats: Features) -> tuple[np.ndarray, np.ndarray]:
    """The boosting model's matrix and its categorical mask (codes first)."""
    x = np.hstack([feats.codes.astype(float), feats.numbers, feats.text])
    mask = np.zeros(x.shape[1], dtype=bool)
    mask[: feats.codes.shape[1]] = True
    return x, mask


@dataclass
class Calibrator:
    """A monotone map from raw logit to probability."""

    method: str
    model: Any

    def __call__(self, z: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.asarray(self.model.predict(z), dtype=float)
        return np.asarray(self.model.predict_proba(z[:, None])[:, 1], dtype=float)


def fit_calibrator(method: str, z: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit a sigmoid (Platt, unregularised) or isotonic calibrator on logits ``z``."""
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        return Calibrator(method, IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(z, y))
    from sklearn.linear_model import LogisticRegression

    return Calibrator(method, LogisticRegression(C=1e6, max_iter=1000).fit(z[:, None], y))


@dataclass
class Ensemble:
    """Fold models, blend weight and calibrator; see the module docstring."""

    weight: float
    linear: list[Any]
    trees: list[Any]
    calibrator: Calibrator
    report: dict[str, Any] = field(default_factory=dict)

    def raw_logit(self, featurizer: Featurizer, feats: Features) -> np.ndarray:
        """Mean over fold models of the blended logit (before calibration)."""
        z = np.zeros(len(feats))
        if self.weight < 1:
            xl = featurizer.linear(feats)
            z += (1 - self.weight) * np.mean([m.decision_function(xl) for m in self.linear], axis=0)
        if self.weight > 0:
            xt, _ = tree_matrix(feats)
            z += self.weight * np.mean([_logit(m.predict_proba(xt)[:, 1]) for m in self.trees], axis=0)
        return z

    def probability(self, featurizer: Featurizer, feats: Features) -> np.ndarray:
        """Calibrated P(convert)."""
        return self.calibrator(self.raw_logit(featurizer, feats))


def _fit_fold(featurizer: Featurizer, feats: Features, y: np.ndarray, cfg: ModelConfig, seed: int,
              need_trees: bool = True) -> tuple[Any, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    lin = LogisticRegression(C=cfg.lr_c, max_iter=5000).fit(featurizer.linear(feats), y)
    if not need_trees:
        return lin, None
    xt, mask = tree_matrix(feats)
    # early stopping needs a usable inner validation split; tiny data gets a fixed, short run
    big = len(y) >= 400
    tree = HistGradientBoostingClassifier(
        learning_rate=cfg.hgb_learning_rate, max_iter=cfg.hgb_max_iter if big else 100,
        max_leaf_nodes=cfg.hgb_max_leaf_nodes, l2_regularization=cfg.hgb_l2,
        min_samples_leaf=min(cfg.hgb_min_samples_leaf, max(5, len(y) // 20)),
        categorical_features=mask if mask.any() else None, early_stopping=big,
        validation_fraction=0.15, n_iter_no_change=30, random_state=seed,
    ).fit(xt, y)
    return lin, tree


def _platt_logloss(z: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, fit_calibrator("sigmoid", z, y)(z), labels=[0, 1]))


def _choose_calibration(z: np.ndarray, y: np.ndarray, folds: list[np.ndarray], cfg: ModelConfig) -> tuple[str, dict]:
    if cfg.calibration != "auto":
        return cfg.calibration, {}
    if len(y) < 500:
        return "sigmoid", {}
    scores = {}
    for method in ("sigmoid", "isotonic"):
        err = 0.0
        for held in folds:
            rest = np.setdiff1d(np.arange(len(y)), held)
            p = fit_calibrator(method, z[rest], y[rest])(z[held])
            err += float(np.sum((p - y[held]) ** 2))
        scores[method] = err / len(y)
    return min(scores, key=lambda m: scores[m]), {"calibration_cv_brier": scores}


def fit_ensemble(featurizer: Featurizer, feats: Features, y: np.ndarray, cfg: ModelConfig, seed: int) -> Ensemble:
    """Cross-fit, choose the blend, calibrate; see the module docstring."""
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    y = np.asarray(y, dtype=int)
    k = int(min(cfg.folds, np.bincount(y, minlength=2).min()))
    if k < 2:
        raise ValueError("training needs at least 2 leads of each class (converted and not converted)")
    splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    need_trees = any(w > 0 for w in cfg.blend_weights)
    oof_l, oof_t = np.zeros(len(y)), np.zeros(len(y))
    linear, trees = [], []
    with threadpool_limits(cfg.n_threads):
        for i, (fit_idx, held) in enumerate(splits):
            lin, tree = _fit_fold(featurizer, feats.take(fit_idx), y[fit_idx], cfg, seed + i, need_trees)
            part = feats.take(held)
            oof_l[held] = lin.decision_function(featurizer.linear(part))
            if tree is not None:
                oof_t[held] = _logit(tree.predict_proba(tree_matrix(part)[0])[:, 1])
            linear.append(lin)
            trees.append(tree)
        losses = {w: _platt_logloss(w * oof_t + (1 - w) * oof_l, y) for w in cfg.blend_weights}
        weight = min(losses, key=lambda w: (losses[w], w))
        z = weight * oof_t + (1 - weight) * oof_l
        method, extra = _choose_calibration(z, y, [h for _, h in splits], cfg)
        calibrator = fit_calibrator(method, z, y)
    from scoring.metrics import roc_auc

    report = {"folds": k, "blend_weight_hgb": weight, "calibration": method,
              "oof_logloss_by_weight": {str(w): v for w, v in losses.items()},
              "oof_roc_auc": roc_auc(y, z), **extra}
    return Ensemble(weight, linear, trees if weight > 0 else [], calibrator, report)
