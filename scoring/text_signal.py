"""A supervised text signal: what in a lead's text predicts conversion, as one cross-fitted score.

Why: the main model reads text only through a few unsupervised principal components of the
embedding, so intent that does not dominate the variance ("budget approved" among a thousand
form messages) is lost. :class:`TextSignal` learns it directly, with two base models:

- ``ngrams``: an L2 logistic regression over sparse word uni- and bigrams (TF-IDF, sublinear:
  phrases and negations such as "don't have budget" in space-separated languages) and
  character 1-3-grams inside word boundaries (they carry Chinese, which has no spaces: a CJK
  "word" is a whole clause, its character n-grams are its words; and typos);
- ``vector``: an L2 logistic regression over the full encoder vector when there is one (all its
  dimensions, not a few components).

Each base's regularisation is chosen from its grid by out-of-fold log loss (``folds`` stratified
folds, the same for every candidate), as the main model chooses its blend. With both bases, a
logistic regression over their two logits stacks them; it is cross-fitted on the same folds, so
every training row's signal is **out-of-fold at both levels**: the main model stacked on top
learns how far to trust the signal from scores as noisy as the ones it will see on new leads.
New leads are scored by the bases refitted on all training rows (the chosen ``C``) and the
stacker fitted on all out-of-fold logits. How much the main model leans on the signal is its own
fitted choice (a weight, a tree split), made with the rest of the model. What was chosen is in
:attr:`TextSignal.report`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

MIN_ROWS = 40  # below this (or under ``folds`` leads of a class) there is no signal to cross-fit
# Inverse regularisation tried per base. The vector base reads the unit-norm embedding scaled by
# sqrt(dim) (coordinates of about unit size), so its useful C is smaller.
C_GRID: dict[str, tuple[float, ...]] = {"ngrams": (0.3, 1.0, 3.0, 10.0), "vector": (0.003, 0.01, 0.03, 0.1)}


class TextSignal:
    """One text column's cross-fitted supervised score; see the module docstring."""

    def __init__(self, *, folds: int = 5, grid: dict[str, tuple[float, ...]] | None = None, seed: int = 0) -> None:
        self.folds, self.grid, self.seed = folds, grid or C_GRID, seed
        self._bases: dict[str, Any] = {}  # base name -> fitted (vectorizers, lr)
        self._stack: Any = None  # LogisticRegression over the bases' logits (two bases only)
        self.report: dict[str, Any] = {}

    def fit_oof(self, texts: Sequence[str], vectors: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        """Out-of-fold logits for the training texts; then fit on all of them for :meth:`transform`."""
        from sklearn.model_selection import StratifiedKFold

        texts, y = list(texts), np.asarray(y, dtype=int)
        self._bases, self._stack, self.report = {}, None, {}
        counts = np.bincount(y, minlength=2)
        if len(texts) < MIN_ROWS or counts.min() < self.folds or not any(t.strip() for t in texts):
            return np.zeros(len(texts))  # nothing to learn: a constant 0 column
        folds = list(StratifiedKFold(self.folds, shuffle=True, random_state=self.seed).split(np.zeros(len(y)), y))
        inputs: dict[str, _NgramInput | _VectorInput] = {"ngrams": _NgramInput(texts)}
        if vectors is not None and vectors.shape[1]:
            inputs["vector"] = _VectorInput(vectors)
        oof: dict[str, np.ndarray] = {}
        for name, source in inputs.items():
            c, oof[name], losses = _choose_c(source, y, folds, self.grid[name])
            self.report[name] = {"c": c, "oof_logloss_by_c": losses}
            self._bases[name] = source.fit(np.arange(len(y)), y, c)
        if len(oof) == 1:
            return next(iter(oof.values()))
        z = np.column_stack([oof[name] for name in self._bases])
        stacked = np.zeros(len(y))
        for train, held in folds:
            stacked[held] = _stacker(z[train], y[train]).decision_function(z[held])
        self._stack = _stacker(z, y)
        self.report["stack_weights"] = dict(zip(self._bases, map(float, self._stack.coef_[0]), strict=True))
        return stacked

    def transform(self, texts: Sequence[str], vectors: np.ndarray | None) -> np.ndarray:
        """The logit of each text (0 everywhere when there was nothing to learn). ``vectors`` are
        read only if the signal was fitted with them."""
        texts = list(texts)
        if "_bases" not in self.__dict__:  # a model pickled before the two bases: one joint model
            return _legacy_logit(self.__dict__, texts, vectors)
        if not self._bases:
            return np.zeros(len(texts))
        logits = [_logit(model, _NgramInput(texts) if name == "ngrams" else _VectorInput(vectors))
                  for name, model in self._bases.items()]
        if self._stack is None:
            return logits[0]
        return np.asarray(self._stack.decision_function(np.column_stack(logits)), dtype=np.float64)


class _NgramInput:
    """Word + character TF-IDF of texts; vectorizers are fitted on the training rows of each fit."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self._fitted: dict[bytes, list[Any]] = {}

    def design(self, rows: np.ndarray, vectorizers: list[Any]) -> Any:
        return _sparse_design(vectorizers, [self.texts[i] for i in rows])

    def vectorizers(self, rows: np.ndarray) -> list[Any]:
        key = rows.tobytes()
        if key not in self._fitted:  # one fit per fold, shared by every C of the grid
            self._fitted[key] = _fit_vectorizers([self.texts[i] for i in rows])
        return self._fitted[key]

    def fit(self, rows: np.ndarray, y: np.ndarray, c: float) -> tuple[list[Any], Any]:
        vectorizers = self.vectorizers(rows)
        return vectorizers, _lr(c).fit(self.design(rows, vectorizers), y)

    def all_rows(self) -> np.ndarray:
        return np.arange(len(self.texts))


class _VectorInput:
    """The full encoder vectors, scaled by sqrt(dim)."""

    def __init__(self, vectors: np.ndarray | None) -> None:
        v = np.zeros((0, 0)) if vectors is None else np.asarray(vectors, dtype=np.float64)
        self.x = v * math.sqrt(max(1, v.shape[1]))

    def design(self, rows: np.ndarray, vectorizers: list[Any]) -> Any:
        return self.x[rows]

    def vectorizers(self, rows: np.ndarray) -> list[Any]:
        return []

    def fit(self, rows: np.ndarray, y: np.ndarray, c: float) -> tuple[list[Any], Any]:
        return [], _lr(c).fit(self.x[rows], y)

    def all_rows(self) -> np.ndarray:
        return np.arange(self.x.shape[0])


def _choose_c(source: Any, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
              grid: tuple[float, ...]) -> tuple[float, np.ndarray, dict[str, float]]:
    """The grid's C with the lowest out-of-fold log loss (after a Platt fit), its OOF logits, all losses."""
    best: tuple[float, float, np.ndarray] | None = None
    losses = {}
    for c in grid:
        oof = np.zeros(len(y))
        for train, held in folds:
            model = source.fit(train, y[train], c)
            oof[held] = model[1].decision_function(source.design(held, model[0]))
        losses[str(c)] = loss = _platt_logloss(oof, y)
        if best is None or loss < best[0]:
            best = (loss, c, oof)
    assert best is not None
    return best[1], best[2], losses


def _platt_logloss(z: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    platt = LogisticRegression(C=1e6, max_iter=1000).fit(z[:, None], y)
    return round(float(log_loss(y, platt.predict_proba(z[:, None])[:, 1], labels=[0, 1])), 6)


def _lr(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000, solver="liblinear")


def _stacker(z: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000).fit(z, y)


def _fit_vectorizers(texts: list[str]) -> list[Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                            token_pattern=r"(?u)\b\w+'?\w*\b", max_features=50_000)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True,
                            max_features=50_000)
    return [v for v in (words, chars) if _fits(v, texts)]


def _fits(vectorizer: Any, texts: list[str]) -> bool:
    try:
        vectorizer.fit(texts)
    except ValueError:  # no n-gram seen twice: this vectorizer carries nothing
        return False
    return True


def _sparse_design(vectorizers: list[Any], texts: list[str], vectors: np.ndarray | None = None) -> Any:
    from scipy import sparse

    parts = [v.transform(texts) for v in vectorizers]
    if vectors is not None and vectors.shape[1]:
        parts.append(sparse.csr_matrix(np.asarray(vectors, dtype=np.float64)))
    if not parts:
        return sparse.csr_matrix((len(texts), 1))
    return sparse.hstack(parts, format="csr")


def _logit(model: tuple[list[Any], Any], source: Any) -> np.ndarray:
    vectorizers, lr = model
    return np.asarray(lr.decision_function(source.design(source.all_rows(), vectorizers)), dtype=np.float64)


def _legacy_logit(state: dict[str, Any], texts: list[str], vectors: np.ndarray | None) -> np.ndarray:
    """A signal pickled before the two bases (one model over n-grams and the raw vector)."""
    if state.get("_model") is None:
        return np.zeros(len(texts))
    vectorizers, lr = state["_model"]
    design = _sparse_design(vectorizers, texts, vectors if state.get("_with_vectors") else None)
    return np.asarray(lr.decision_function(design), dtype=np.float64)
