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
   sigmoid (Platt) or isotonic, chosen by a cross-validation over the OOF rows
   (``calibration="auto"``; isotonic only from 500 rows on, it overfits less). Both maps are
   strictly increasing in the logit — isotonic's flat steps are tie-broken by a
   ``ISOTONIC_TIE_WEIGHT`` share of the sigmoid map — so they rank leads identically (ROC-AUC is
   the raw logit's) and differ only in the probabilities. The choice minimises the
   cross-validated Brier score (``calibration_metric="brier"``, default) or expected
   calibration error (``"ece"``). Brier is the default because it is a proper score with far
   less sampling noise: a perfectly calibrated model shows an ECE of about 0.011 on 7,000 rows
   and 0.018 on 2,300 (``metrics.ece_noise_floor``), so ECE differences of that size between
   calibrators say little.
4. The model used later averages the fold models' logits (a bagged ensemble) and applies the
   calibrator to that average.

``raw_logit(featurizer, feats)`` is the uncalibrated ensemble logit: the reasons are
differences of it, the probability is ``calibrator(raw_logit)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.features import Features, Featurizer


@dataclass(frozen=True)
class ModelConfig:
    """Model choices.

    ``folds=10``: on the x-education benchmark's *training* part (never its test part), a
    5-fold cross-validation of the whole procedure gave lower log loss (0.4222 vs 0.4232),
    Brier and ECE with 10 inner folds than with 5: fold models see 90% of the rows, not 80%.
    """

    folds: int = 10
    blend_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    lr_c: float = 0.5
    hgb_learning_rate: float = 0.03
    hgb_max_iter: int = 500
    hgb_max_leaf_nodes: int = 8
    hgb_l2: float = 3.0
    hgb_min_samples_leaf: int = 30
    # Stack the cross-fitted supervised text score (scoring.text_signal) of each text column
    # into the features; False: text reaches the model through its principal components only.
    text_signal: bool = True
    calibration: str = "auto"  # auto | sigmoid | isotonic
    calibration_metric: str = "brier"  # what "auto" minimises in cross-validation: brier | ece
    # One thread: fits are small and a daemon shares its box; OpenMP on a busy 2-core machine
    # was measured 20x slower than a single thread.
    n_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.calibration not in ("auto", "sigmoid", "isotonic"):
            raise ValueError(f"calibration must be auto, sigmoid or isotonic, got {self.calibration!r}")
        if self.calibration_metric not in ("brier", "ece"):
            raise ValueError(f"calibration_metric must be brier or ece, got {self.calibration_metric!r}")
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


# Share of the sigmoid map mixed into the isotonic one: it breaks isotonic's ties (so the
# ranking, hence ROC-AUC, is the raw logit's) while moving a probability by at most 0.1 times
# the gap between the two calibrations.
ISOTONIC_TIE_WEIGHT = 0.1


@dataclass
class Calibrator:
    """A strictly increasing map from raw logit to probability (see the module docstring)."""

    method: str
    model: Any
    tie_break: Any = None  # isotonic only: the sigmoid model mixed in with ``tie_weight``
    tie_weight: float = 0.0

    def __call__(self, z: np.ndarray) -> np.ndarray:
        if self.method != "isotonic":
            return _platt(self.model, z)
        p = np.asarray(self.model.predict(z), dtype=float)
        sig = getattr(self, "tie_break", None)  # absent in models pickled before tie-breaking
        if sig is None:
            return p
        w = self.tie_weight
        return (1 - w) * p + w * _platt(sig, z)


def _platt(model: Any, z: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(np.asarray(z, dtype=float)[:, None])[:, 1], dtype=float)


def fit_calibrator(method: str, z: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit a sigmoid (Platt, unregularised) or a tie-broken isotonic calibrator on logits ``z``."""
    from sklearn.linear_model import LogisticRegression

    sigmoid = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(z, dtype=float)[:, None], y)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(z, y)
        return Calibrator(method, iso, tie_break=sigmoid, tie_weight=ISOTONIC_TIE_WEIGHT)
    return Calibrator(method, sigmoid)


@dataclass
class Ensemble:
    """Fold models, blend weight and calibrator; see the module docstring."""

    weight: float
    linear: list[Any]
    trees: list[Any]
    calibrator: Calibrator
    report: dict[str, Any] = field(default_factory=dict)
    # The training rows' out-of-fold blended logits: set by ``fit_ensemble`` for the caller
    # (the opportunity threshold reads them), cleared before the model is saved.
    oof: np.ndarray | None = field(default=None, repr=False)

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

    def substituted_logits(self, featurizer: Featurizer, part: Features,
                           copies: Sequence[tuple[int, Features]]) -> np.ndarray:
        """``raw_logit`` of ``part`` followed by each copy's, for copies of ``part`` that differ from
        it only in column number ``g`` (``(g, copy)``, as the reasons make them).

        The same numbers as ``raw_logit`` on them stacked (to rounding), with less work: a
        boosting model's logit is a sum over its trees, and a copy that changes column ``g``
        changes only the trees that split on ``g``'s features, so only those are evaluated on
        the copy (``_TreeSubsets``). Most trees split on few of a lead's columns; reasons, which
        evaluate the model on ~50 copies of every lead, became the bulk of a backfill's time
        before this."""
        if self.weight > 0 and not all(_TreeSubsets.usable(m) for m in self.trees):
            return self.raw_logit(featurizer, Features.stack([part, *(c for _, c in copies)]))
        m, k = len(part), len(copies)
        z = np.zeros((k + 1) * m)
        if self.weight < 1:
            stacked = Features.stack([part, *(c for _, c in copies)])
            xl = featurizer.linear(stacked)
            z += (1 - self.weight) * np.mean([lin.decision_function(xl) for lin in self.linear], axis=0)
        if self.weight > 0:
            trees = np.zeros((k + 1) * m)
            x_all = np.vstack([tree_matrix(part)[0], *(tree_matrix(c)[0] for _, c in copies)])
            groups = np.array([g for g, _ in copies])
            for model in self.trees:
                trees += _raw_to_logit(_TreeSubsets.of(model, featurizer).raw(x_all, m, groups))
            z += self.weight * trees / len(self.trees)
        return z


def _raw_to_logit(raw: np.ndarray) -> np.ndarray:
    """What ``_logit(model.predict_proba(x)[:, 1])`` gives for the boosting model's raw score."""
    from scipy.special import expit

    return _logit(expit(raw))


class _TreeSubsets:
    """One fitted ``HistGradientBoostingClassifier`` (binary) seen as a sum of trees, grouped by
    which feature groups (the featurizer's columns) each tree splits on.

    ``raw(x, m, groups)`` scores ``m`` leads and copies of them that each change one column:
    every tree is evaluated on the leads, and on only those copies whose changed column it
    splits on — on the others it gives what it gave the lead. Trees splitting on the same set of
    columns are evaluated together, so there are as many model calls as before on fewer rows.

    Uses scikit-learn's fitted internals (``_predictors``, ``_baseline_prediction``,
    ``_preprocess_X``, ``_bin_mapper``, ``TreePredictor.predict``: stable since 1.0); a model without them
    (``usable`` False) is scored the public way. ``tests/scoring/test_reasons_fast.py`` holds both
    paths equal."""

    _cache: Any = None

    def __init__(self, model: Any, featurizer: Featurizer) -> None:
        self.model = model
        spec = featurizer.spec
        n_num, n_cat = len(spec.numeric), len(spec.categorical)
        group_of: dict[int, int] = {n_cat + j: j for j in range(n_num)}
        group_of.update({j: n_num + j for j in range(n_cat)})
        for t in range(len(spec.text)):
            lo, hi = featurizer.text_slice(t)
            group_of.update({n_cat + n_num + c: n_num + n_cat + t for c in range(lo, hi)})
        self.by_groups: dict[frozenset[int], list[Any]] = {}
        for (pred,) in model._predictors:
            split = pred.nodes["feature_idx"][pred.nodes["is_leaf"] == 0]
            self.by_groups.setdefault(frozenset(group_of[int(f)] for f in split), []).append(pred)
        self.bitsets = model._bin_mapper.make_known_categories_bitsets()

    @staticmethod
    def usable(model: Any) -> bool:
        return (getattr(model, "n_trees_per_iteration_", None) == 1 and hasattr(model, "_predictors")
                and hasattr(model, "_baseline_prediction") and hasattr(model, "_preprocess_X")
                and hasattr(model, "_bin_mapper"))

    @classmethod
    def of(cls, model: Any, featurizer: Featurizer) -> _TreeSubsets:
        import weakref

        if cls._cache is None:
            cls._cache = weakref.WeakKeyDictionary()
        found = cls._cache.get(model)
        if found is None or found[0] is not featurizer:
            found = (featurizer, cls(model, featurizer))
            cls._cache[model] = found
        return found[1]

    def raw(self, x: np.ndarray, m: int, groups: np.ndarray) -> np.ndarray:
        """The model's raw score of each row of ``x``: ``m`` leads, then copies of them in blocks
        of ``m`` (block ``i`` changes column ``groups[i]``)."""
        xp = self.model._preprocess_X(x, reset=False)
        base = np.full(m, float(np.ravel(self.model._baseline_prediction)[0]))
        for preds in self.by_groups.values():
            base += self._sum(preds, xp[:m])
        out = np.tile(base, len(groups) + 1)
        for used, preds in self.by_groups.items():
            blocks = np.flatnonzero(np.isin(groups, list(used)))
            if not len(blocks):
                continue
            rows = np.concatenate([np.arange(m), (m * (blocks[:, None] + 1) + np.arange(m)).ravel()])
            vals = self._sum(preds, xp[rows])
            out[rows[m:]] += vals[m:] - np.tile(vals[:m], len(blocks))
        return out

    def _sum(self, preds: list[Any], x: np.ndarray) -> np.ndarray:
        known, f_idx = self.bitsets
        out = np.zeros(len(x))
        for pred in preds:
            out += pred.predict(x, known, f_idx, 1)
        return out


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
    """The calibration with the lowest cross-validated ``cfg.calibration_metric`` over the OOF rows."""
    from scoring.metrics import brier, ece

    if cfg.calibration != "auto":
        return cfg.calibration, {}
    if len(y) < 500:
        return "sigmoid", {}
    scores: dict[str, dict[str, float]] = {}
    for method in ("sigmoid", "isotonic"):
        p = np.zeros(len(y))
        for held in folds:
            rest = np.setdiff1d(np.arange(len(y)), held)
            p[held] = fit_calibrator(method, z[rest], y[rest])(z[held])
        scores[method] = {"ece": ece(y, p), "brier": brier(y, p)}
    metric = cfg.calibration_metric
    best = min(scores, key=lambda m: (scores[m][metric], m != "sigmoid"))  # ties: the smoother map
    return best, {"calibration_cv": scores, "calibration_metric": metric}


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
    return Ensemble(weight, linear, trees if weight > 0 else [], calibrator, report, oof=z)
