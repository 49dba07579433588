"""Declared lead features: ``FeatureSpec`` (what to read) and ``Featurizer`` (fitted on train).

Columns are declared once, in a :class:`FeatureSpec`, never guessed per call:

- **numeric**: parsed to float ("1,234" is read, anything else unparsable is missing), clipped to
  the training quantiles ``[q, 1-q]`` and put through ``sign(x)·log1p(|x|)`` (counts, revenue
  and times on site are heavily skewed). The tree model sees the value with missing as NaN;
  the linear model sees cubic B-splines on quantile knots of the median-imputed value plus
  a missing indicator.
- **categorical**: stripped, NFC-normalised text. Levels seen fewer than ``min_count`` times
  in training (and beyond the ``max_levels`` most frequent) are pooled into "other"; a level
  never seen in training is "other" too, so new values are safe. Code 0 is missing, 1 other.
- **missing**: ``None``, NaN, empty or whitespace-only strings and the tokens in
  ``missing_values`` (case-insensitive; default ``"Select"``, a web form's "not chosen").
- **text**: each text column becomes an encoder vector (``TextEncoder.encode``), or TF-IDF
  when no encoder is given, reduced to ``text_components`` principal components fitted on train.
  When ``fit`` is given the labels, one more column follows them: the cross-fitted supervised
  text score of ``scoring.text_signal`` (word + character n-grams and the full vector; out-of-fold
  on the training rows).

``Featurizer.fit(rows, encoder)`` learns all of that from the training rows;
``transform(rows, encoder) -> Features`` gives the arrays both models read. ``Features`` also
knows each column's *background*: its training distribution (level shares, deciles, empty text
for text columns). The reasons compare a lead with that background one column at a time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from scoring.feature_spec import FeatureSpec, Rows, _level, _number, is_missing, to_frame

MISSING, OTHER = 0, 1  # categorical codes; real levels start at 2
__all__ = ["MISSING", "OTHER", "FeatureSpec", "Features", "Featurizer", "Rows", "is_missing", "to_frame"]


@dataclass
class Features:
    """A batch of transformed rows: codes, numbers and text components, plus the raw display values."""

    codes: np.ndarray  # (n, n_categorical) int, MISSING/OTHER/level codes
    numbers: np.ndarray  # (n, n_numeric) float, transformed, NaN = missing
    text: np.ndarray  # (n, n_text * components) float
    raw: pd.DataFrame  # the declared columns as given, for wording reasons

    def __len__(self) -> int:
        return int(self.numbers.shape[0])

    @staticmethod
    def stack(parts: Sequence[Features]) -> Features:
        """Rows of ``parts`` one after another (model inputs only: ``raw`` is left empty)."""
        n = sum(len(p) for p in parts)
        return Features(np.vstack([p.codes for p in parts]), np.vstack([p.numbers for p in parts]),
                        np.vstack([p.text for p in parts]), pd.DataFrame(index=range(n)))

    def take(self, index: np.ndarray) -> Features:
        """The rows at ``index``."""
        return Features(self.codes[index], self.numbers[index], self.text[index],
                        self.raw.iloc[index].reset_index(drop=True))


class Featurizer:
    """A ``FeatureSpec`` fitted on training rows; see the module docstring."""

    def __init__(self, spec: FeatureSpec, seed: int = 0) -> None:
        self.spec, self.seed = spec, seed
        self.levels: dict[str, list[str]] = {}
        self.clip: dict[str, tuple[float, float]] = {}
        self.median: dict[str, float] = {}
        self.knots: dict[str, np.ndarray] = {}
        self.text_models: dict[str, Any] = {}  # column -> (tfidf or None, PCA, TextSignal or None)
        self.encoder_id: str | None = None
        self.reference: Features | None = None
        self.backgrounds: list[list[tuple[float, Any]]] = []
        self._seen: dict[str, bool] = {}

    # ---------------------------------------------------------------- fit
    def fit(self, rows: Rows, encoder: Any = None, labels: Any = None) -> Featurizer:
        """Learn levels, clipping, knots and text reductions from the training rows."""
        self.fit_transform(rows, encoder, labels)
        return self

    def fit_transform(self, rows: Rows, encoder: Any = None, labels: Any = None) -> Features:
        """``fit`` and return the training rows' features (each text is encoded once).

        ``labels`` (0/1 per row): also learn the supervised text signal of each text column."""
        frame = to_frame(rows, self.spec.columns)
        tokens = self.spec.missing_values
        for col in self.spec.categorical:
            counts = Counter(_level(v) for v in frame[col] if not is_missing(v, tokens))
            keep = [lvl for lvl, n in counts.most_common(self.spec.max_levels) if n >= self.spec.min_count]
            self.levels[col] = keep
        for col in self.spec.numeric:
            x = self._parse(frame[col])
            ok = x[~np.isnan(x)]
            q = self.spec.clip_quantile
            self.clip[col] = (float(np.quantile(ok, q)), float(np.quantile(ok, 1 - q))) if ok.size else (0.0, 0.0)
            self._seen[col] = bool(ok.size)
            t = self._num(col, x)
            t_ok = t[~np.isnan(t)]
            self.median[col] = float(np.median(t_ok)) if t_ok.size else 0.0
            self.knots[col] = np.unique(np.quantile(t_ok, np.linspace(0, 1, self.spec.spline_knots))) \
                if t_ok.size else np.zeros(1)
        self.encoder_id = getattr(encoder, "model_id", None) if self.spec.text else None
        parts = []
        for col in self.spec.text:
            comps, self.text_models[col] = self._fit_text(frame[col], encoder, labels)
            parts.append(comps)
        codes, numbers = self._structured(frame)
        feats = Features(codes, numbers, np.hstack(parts) if parts else np.zeros((len(frame), 0)), frame)
        self.fit_linear(feats)
        self.reference = self._reference()
        self.backgrounds = self._backgrounds(feats)
        return feats

    def _parse(self, values: pd.Series) -> np.ndarray:
        tokens = self.spec.missing_values
        return np.array([math.nan if is_missing(v, tokens) else _number(v) for v in values], dtype=float)

    def _num(self, col: str, x: np.ndarray) -> np.ndarray:
        lo, hi = self.clip[col]
        c = np.clip(x, lo, hi)
        return np.sign(c) * np.log1p(np.abs(c))

    def _fit_text(self, texts: pd.Series, encoder: Any, labels: Any = None) -> tuple[np.ndarray, tuple[Any, ...]]:
        from sklearn.decomposition import PCA

        tfidf = None
        clean = [self._text(v) for v in texts]
        if encoder is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            tfidf = TfidfVectorizer(max_features=5000, sublinear_tf=True)
            try:
                tfidf.fit(clean)
            except ValueError:  # no words at all in training: text carries nothing
                tfidf = None
        vectors = self._vectors(clean, tfidf, encoder)
        k = max(1, min(self.spec.text_components, vectors.shape[0] - 1, vectors.shape[1]))
        pca = PCA(n_components=k, random_state=self.seed)
        comps = pca.fit_transform(vectors)
        if labels is None:
            return comps, (tfidf, pca, None)
        from scoring.text_signal import TextSignal

        signal = TextSignal(seed=self.seed)
        oof = signal.fit_oof(clean, vectors if encoder is not None else None, np.asarray(labels))
        return np.hstack([comps, oof[:, None]]), (tfidf, pca, signal)

    def _text_block(self, col: str, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """Components (and the supervised score, when fitted) of one text column for new rows."""
        _, pca, *rest = self.text_models[col]
        comps = pca.transform(vectors)
        signal = rest[0] if rest else None  # models saved before the signal have none
        if signal is None:
            return comps
        return np.hstack([comps, signal.transform(texts, vectors)[:, None]])

    def _text(self, value: Any) -> str:
        return "" if is_missing(value, ()) else str(value)

    def _vectors(self, texts: list[str], tfidf: Any, encoder: Any) -> np.ndarray:
        if encoder is not None:
            return np.asarray(encoder.encode(texts), dtype=np.float64)
        if tfidf is None:
            return np.zeros((len(texts), 1))
        return np.asarray(tfidf.transform(texts).toarray(), dtype=np.float64)

    def _reference(self) -> Features:
        """One "typical" lead: most frequent level (missing if none kept), median number, empty text."""
        codes = np.array([[2 if self.levels[c] else MISSING for c in self.spec.categorical]], dtype=np.int64)
        numbers = np.array([[self.median[c] for c in self.spec.numeric]], dtype=np.float64)
        # an empty text is the zero vector for both the encoder and TF-IDF
        empty = [self._text_block(col, [""], np.zeros((1, model[1].n_features_in_)))
                 for col, model in self.text_models.items()]
        text = np.hstack(empty) if empty else np.zeros((1, 0))
        raw = pd.DataFrame({c: [None] for c in self.spec.columns}, dtype=object)
        return Features(codes, numbers.reshape(1, -1), text, raw)

    def linear(self, feats: Features) -> np.ndarray:
        """The linear model's design: one-hot levels, splines + missing flags, text components."""
        n = len(feats)
        parts = [np.eye(len(self.levels[c]) + 2)[feats.codes[:, j]] for j, c in enumerate(self.spec.categorical)]
        for j, col in enumerate(self.spec.numeric):
            x = feats.numbers[:, j]
            miss = np.isnan(x)
            filled = np.where(miss, self.median[col], x)
            parts.append(self._splines[col].transform(filled[:, None]) if col in self._splines else
                         np.zeros((n, 0)))
            parts.append(miss[:, None].astype(float))
        if feats.text.shape[1]:
            parts.append(feats.text / self._text_scale)
        return np.hstack(parts) if parts else np.zeros((n, 0))

    def fit_linear(self, feats: Features) -> None:
        """Fit the spline bases and text scaling of :meth:`linear` (called once, on training features)."""
        from sklearn.preprocessing import SplineTransformer

        self._splines: dict[str, Any] = {}
        for j, col in enumerate(self.spec.numeric):
            knots = self.knots[col]
            if knots.size >= 2:
                x = np.where(np.isnan(feats.numbers[:, j]), self.median[col], feats.numbers[:, j])
                self._splines[col] = SplineTransformer(knots=knots[:, None], degree=3,
                                                       extrapolation="constant").fit(x[:, None])
        scale = feats.text.std(axis=0) if feats.text.shape[1] else np.ones(0)
        self._text_scale = np.where(scale > 0, scale, 1.0)

    # ---------------------------------------------------------- transform
    def transform(self, rows: Rows, encoder: Any = None) -> Features:
        """Transform rows with what ``fit`` learnt; unknown levels -> other, missing -> missing."""
        if self.reference is None:
            raise RuntimeError("Featurizer.transform before fit")
        frame = to_frame(rows, self.spec.columns)
        codes, numbers = self._structured(frame)
        parts = []
        for col in self.spec.text:
            tfidf, pca = self.text_models[col][:2]
            if encoder is None and self.encoder_id is not None:
                raise ValueError(f"this model reads text column {col!r} through encoder {self.encoder_id}; "
                                 "pass that TextEncoder (LeadScorer.attach_encoder) before scoring")
            texts = [self._text(v) for v in frame[col]]
            vectors = self._vectors(texts, tfidf, encoder) if (tfidf is not None or encoder is not None) \
                else np.zeros((len(frame), pca.n_features_in_))
            parts.append(self._text_block(col, texts, vectors))
        text = np.hstack(parts) if parts else np.zeros((len(frame), 0))
        return Features(codes, numbers, text, frame)

    def _structured(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        tokens = self.spec.missing_values
        codes = np.zeros((len(frame), len(self.spec.categorical)), dtype=np.int64)
        for j, col in enumerate(self.spec.categorical):
            index = {lvl: i + 2 for i, lvl in enumerate(self.levels[col])}
            codes[:, j] = [MISSING if is_missing(v, tokens) else index.get(_level(v), OTHER) for v in frame[col]]
        numbers = np.zeros((len(frame), len(self.spec.numeric)))
        for j, col in enumerate(self.spec.numeric):
            # a column never filled in training is a constant 0: it carries nothing (and an
            # all-missing column breaks the boosting model's binning)
            numbers[:, j] = self._num(col, self._parse(frame[col])) if self._seen.get(col, True) else 0.0
        return codes, numbers

    def _backgrounds(self, feats: Features, top: int = 4) -> list[list[tuple[float, Any]]]:
        """Per column: ``(weight, value)`` pairs describing its training distribution.

        Categorical: the ``top`` most frequent codes (missing and other included), shares
        renormalised; numeric: the 12.5/37.5/62.5/87.5% quantiles plus missing at its share; text:
        the empty text. Few points on purpose: every point costs one model pass per lead.
        """
        out: list[list[tuple[float, Any]]] = []
        n = max(1, len(feats))
        for j in range(len(self.spec.numeric)):
            x = feats.numbers[:, j]
            ok = x[~np.isnan(x)]
            miss = 1 - ok.size / n
            pts = [(float(1 - miss) / 4, float(v)) for v in np.quantile(ok, [0.125, 0.375, 0.625, 0.875])] \
                if ok.size else []
            out.append(pts + ([(float(miss), math.nan)] if miss > 0 else []))
        for j in range(len(self.spec.categorical)):
            counts = Counter(feats.codes[:, j].tolist()).most_common(top)
            total = sum(c for _, c in counts) or 1
            out.append([(c / total, int(code)) for code, c in counts] or [(1.0, MISSING)])
        for k in range(len(self.spec.text)):
            lo, hi = self.text_slice(k)
            assert self.reference is not None
            out.append([(1.0, self.reference.text[0, lo:hi])])
        return out

    def with_value(self, feats: Features, group: int, value: Any) -> Features:
        """``feats`` with column number ``group`` (index into ``spec.columns``) set to ``value``."""
        spec = self.spec
        out = replace(feats, codes=feats.codes.copy(), numbers=feats.numbers.copy(), text=feats.text.copy())
        n_num, n_cat = len(spec.numeric), len(spec.categorical)
        if group < n_num:
            out.numbers[:, group] = value
        elif group < n_num + n_cat:
            out.codes[:, group - n_num] = value
        else:
            lo, hi = self.text_slice(group - n_num - n_cat)
            out.text[:, lo:hi] = value
        return out

    def text_slice(self, k: int) -> tuple[int, int]:
        """The columns of text column number ``k`` inside ``Features.text``."""
        sizes = [self.text_models[c][1].n_components_ + (len(self.text_models[c]) > 2 and
                                                        self.text_models[c][2] is not None)
                 for c in self.spec.text]
        start = int(sum(sizes[:k]))
        return start, start + int(sizes[k])
