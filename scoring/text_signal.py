"""A supervised text signal: what in a lead's text predicts conversion, as one cross-fitted score.

Why: the main model reads text only through a few unsupervised principal components of the
embedding, so intent that does not dominate the variance ("budget approved" among a thousand
form messages) is lost. :class:`TextSignal` learns it directly: an L2 logistic regression over

- sparse word uni- and bigrams (TF-IDF, sublinear) — phrases in space-separated languages,
- sparse character 1-3-grams inside word boundaries — they carry Chinese, which has no spaces
  (a CJK "word" is a whole clause, its character n-grams are its words), and typos,
- the full encoder vector when there is one (all its dimensions, not a few components),

and gives one logit per text. On the training rows that logit is **out-of-fold** (``folds``
stratified folds, each row scored by a model that never saw it), so the main model stacked on
top learns how far to trust the signal from scores as noisy as the ones it will see on new
leads; new leads are scored by the model refitted on all training rows. How much the main model
leans on it is its own fitted choice (a weight, a tree split), made with the rest of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MIN_ROWS = 40  # below this (or under ``folds`` leads of a class) there is no signal to cross-fit


class TextSignal:
    """One text column's cross-fitted supervised score; see the module docstring."""

    def __init__(self, *, folds: int = 5, c: float = 1.0, seed: int = 0) -> None:
        self.folds, self.c, self.seed = folds, c, seed
        self._model: Any = None
        self._with_vectors = False

    def fit_oof(self, texts: Sequence[str], vectors: np.ndarray | None, y: np.ndarray) -> np.ndarray:
        """Out-of-fold logits for the training texts; then fit on all of them for :meth:`transform`."""
        from sklearn.model_selection import StratifiedKFold

        y = np.asarray(y, dtype=int)
        self._with_vectors = vectors is not None
        oof = np.zeros(len(texts))
        counts = np.bincount(y, minlength=2)
        if len(texts) < MIN_ROWS or counts.min() < self.folds or not any(t.strip() for t in texts):
            self._model = None  # nothing to learn: a constant 0 column
            return oof
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=self.seed)
        for train, held in folds.split(np.zeros(len(y)), y):
            model = self._fit([texts[i] for i in train], None if vectors is None else vectors[train], y[train])
            oof[held] = _logit(model, [texts[i] for i in held], None if vectors is None else vectors[held])
        self._model = self._fit(list(texts), vectors, y)
        return oof

    def transform(self, texts: Sequence[str], vectors: np.ndarray | None) -> np.ndarray:
        """The logit of each text (0 everywhere when there was nothing to learn). ``vectors`` are
        read only if the signal was fitted with them."""
        if self._model is None:
            return np.zeros(len(texts))
        return _logit(self._model, list(texts), vectors if self._with_vectors else None)

    def _fit(self, texts: list[str], vectors: np.ndarray | None, y: np.ndarray) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                token_pattern=r"(?u)\b\w+\b", max_features=50_000)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True,
                                max_features=50_000)
        fitted = [v for v in (words, chars) if _fits(v, texts)]
        design = _design(fitted, texts, vectors)
        lr = LogisticRegression(C=self.c, max_iter=2000, solver="liblinear")
        lr.fit(design, y)
        return fitted, lr


def _fits(vectorizer: Any, texts: list[str]) -> bool:
    try:
        vectorizer.fit(texts)
    except ValueError:  # no n-gram seen twice: this vectorizer carries nothing
        return False
    return True


def _design(vectorizers: list[Any], texts: list[str], vectors: np.ndarray | None) -> Any:
    from scipy import sparse

    parts = [v.transform(texts) for v in vectorizers]
    if vectors is not None and vectors.shape[1]:
        parts.append(sparse.csr_matrix(np.asarray(vectors, dtype=np.float64)))
    if not parts:
        return sparse.csr_matrix((len(texts), 1))
    return sparse.hstack(parts, format="csr")


def _logit(model: Any, texts: list[str], vectors: np.ndarray | None) -> np.ndarray:
    vectorizers, lr = model
    return np.asarray(lr.decision_function(_design(vectorizers, texts, vectors)), dtype=np.float64)
