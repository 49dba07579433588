"""Reasons in rep words, derived from the model itself.

**Attribution** (baseline substitution, one feature group at a time): for each declared
column ``g``, ``contribution_g = raw(x) - sum_v w_v * raw(x with g set to v)``, where ``raw`` is
the ensemble's uncalibrated logit and ``(w_v, v)`` is the column's training distribution
(``Featurizer.backgrounds``: level shares, deciles; for text the empty message). Positive means
"this value raises the score compared with what leads usually have here". Calibration is
monotone, so signs carry over.

**Wording**: categorical ``"Source: Reference (+)"`` (missing: ``"Occupation: not given (−)"``),
numeric ``"Time on site: 1,532 (+)"``, text ``"Message mentions budget and timeline (+)"``.
Which words a message "mentions" comes from a small interpretable model fitted on the
training texts (binary bag of words + L2 logistic regression): the lead's words whose
coefficient has the sign of the text group's contribution, strongest first.

``render`` keeps the strongest positives then negatives, each ``|c| >= min_effect``, within
``max_chars`` (whole reasons only, never a cut word).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.features import MISSING, Features, Featurizer, is_missing

PLUS, MINUS = "(+)", "(\u2212)"
_WORD = re.compile(r"(?u)\b[^\W\d_]{3,}\b")


@dataclass(frozen=True)
class Reason:
    """One feature group's effect on one lead's score."""

    column: str
    text: str  # rep-facing words without the sign, e.g. "Source: Reference"
    contribution: float  # change of the raw logit against the reference lead

    def __str__(self) -> str:
        return f"{self.text} {PLUS if self.contribution > 0 else MINUS}"


class KeywordModel:
    """Binary bag of words + logistic regression on one text column: which words push up or down."""

    def __init__(self, max_words: int = 3000, min_df: int = 3) -> None:
        self.max_words, self.min_df = max_words, min_df
        self.weights: dict[str, float] = {}

    def fit(self, texts: Sequence[str], y: np.ndarray) -> KeywordModel:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression

        vec = CountVectorizer(binary=True, lowercase=True, token_pattern=_WORD.pattern, stop_words="english",
                              max_features=self.max_words, min_df=min(self.min_df, max(1, len(texts) // 50)))
        try:
            x = vec.fit_transform(texts)
        except ValueError:  # no words in any training text
            return self
        if np.unique(y).size < 2:
            return self
        coef = LogisticRegression(C=0.5, max_iter=2000).fit(x, y).coef_[0]
        self.weights = {w: float(coef[i]) for w, i in vec.vocabulary_.items() if abs(coef[i]) > 1e-3}
        return self

    def cues(self, text: str, sign: float, k: int = 2) -> list[str]:
        """Up to ``k`` words of ``text`` whose weight has ``sign``, strongest first."""
        words = {w.lower() for w in _WORD.findall(text[:20_000])}
        found = [(self.weights[w] * sign, w) for w in words if w in self.weights and self.weights[w] * sign > 0]
        return [w for _, w in sorted(found, reverse=True)[:k]]


def contributions(featurizer: Featurizer, raw: Any, feats: Features, chunk: int = 256) -> np.ndarray:
    """``(n, n_columns)`` baseline-substitution effects on the raw logit; ``raw(feats) -> logits``.

    All substituted copies of a chunk of leads go through the model in one pass.
    """
    n_groups = len(featurizer.spec.columns)
    out = np.zeros((len(feats), n_groups))
    for start in range(0, len(feats), chunk):
        part = feats.take(np.arange(start, min(start + chunk, len(feats))))
        m = len(part)
        plan = [(g, w) for g in range(n_groups) for w, _ in featurizer.backgrounds[g]]
        copies = [featurizer.with_value(part, g, v) for g in range(n_groups) for _, v in featurizer.backgrounds[g]]
        z = raw(Features.stack([part, *copies]))
        base = z[:m]
        for k, (g, w) in enumerate(plan):
            out[start:start + m, g] -= w * z[m * (k + 1): m * (k + 2)]
        out[start:start + m] += base[:, None]
    return out


def _fmt_number(value: Any) -> str:
    try:
        x = float(str(value).replace(",", ""))
    except ValueError:
        return str(value)[:20]
    if not math.isfinite(x):
        return str(value)[:20]
    if abs(x) >= 1e6:
        return f"{x / 1e6:,.1f}M"
    return f"{x:,.0f}" if abs(x) >= 100 or x == int(x) else f"{x:,.2f}"


def describe(featurizer: Featurizer, feats: Features, i: int, g: int, c: float,
             keywords: dict[str, KeywordModel]) -> Reason:
    """The words for column number ``g`` of row ``i`` with contribution ``c``."""
    spec = featurizer.spec
    col = spec.columns[g]
    label = spec.label(col)
    value = feats.raw.iloc[i][col]
    n_num, n_cat = len(spec.numeric), len(spec.categorical)
    if g < n_num + n_cat:
        missing = is_missing(value, spec.missing_values) if g < n_num else feats.codes[i, g - n_num] == MISSING
        if missing:
            return Reason(col, f"{label}: not given", c)
        shown = _fmt_number(value) if g < n_num else " ".join(str(value).split())[:40]
        return Reason(col, f"{label}: {shown}", c)
    text = "" if is_missing(value, ()) else str(value)
    if not text.strip():
        return Reason(col, f"{label}: none", c)
    cues = keywords[col].cues(text, np.sign(c)) if col in keywords else []
    return Reason(col, f"{label} mentions {' and '.join(cues)}" if cues else label, c)


def render(reasons: Sequence[Reason], max_chars: int = 250, *, positives: int = 3, negatives: int = 2,
           min_effect: float = 0.05) -> str:
    """``"A (+); B (+); C (−)"`` within ``max_chars``: strongest positives first, then negatives."""
    pos = sorted((r for r in reasons if r.contribution >= min_effect), key=lambda r: -r.contribution)[:positives]
    neg = sorted((r for r in reasons if r.contribution <= -min_effect), key=lambda r: r.contribution)[:negatives]
    out: list[str] = []
    for r in [*pos, *neg]:
        piece = str(r)
        if len(piece) > max_chars:  # one over-long value: cut inside it, keep the sign
            piece = piece[: max_chars - 5].rstrip() + "\u2026 " + piece[-3:]
        if len("; ".join([*out, piece])) <= max_chars:
            out.append(piece)
    return "; ".join(out) if out else "No single factor stands out"
