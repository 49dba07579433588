"""Lead context -> feature vector for the contextual policy.

Categorical attributes are one-hot over values seen at least ``min_count`` times (rare and
unseen values fall to the intercept, so a new country does not crash routing); numeric
attributes are standardised; the lead's score, if present, enters as its logit. Free text is
ignored here (scoring already turned it into the score).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_SKIP = frozenset({"text", "lead_id", "id", "email", "title", "company"})


class FeatureEncoder:
    """Learns a vocabulary and scaling from contexts; column 0 is the intercept."""

    def __init__(self, min_count: int = 5, max_levels: int = 30, score_field: str = "score") -> None:
        self.min_count = int(min_count)
        self.max_levels = int(max_levels)
        self.score_field = score_field
        self.levels: dict[str, list[str]] = {}
        self.numeric: dict[str, tuple[float, float]] = {}
        self._columns: dict[tuple[str, str], int] = {}
        self._numeric_cols: dict[str, int] = {}

    @property
    def dim(self) -> int:
        """Number of columns including the intercept."""
        return 1 + len(self._columns) + len(self._numeric_cols)

    def fit(self, contexts: Sequence[Mapping[str, Any]]) -> FeatureEncoder:
        """Choose levels and numeric scaling from these contexts."""
        counts: dict[str, Counter[str]] = {}
        sums: dict[str, list[float]] = {}
        for ctx in contexts:
            for key, value in ctx.items():
                if key in _SKIP or value is None or value == "":
                    continue
                if isinstance(value, str):
                    counts.setdefault(key, Counter())[value.casefold()] += 1
                elif isinstance(value, bool | int | float):
                    sums.setdefault(key, []).append(self._numeric_value(key, float(value)))
        self.levels = {
            key: sorted(v for v, c in cnt.most_common(self.max_levels) if c >= self.min_count) for key, cnt in sorted(counts.items())
        }
        self.numeric = {key: (float(np.mean(v)), float(np.std(v)) or 1.0) for key, v in sorted(sums.items()) if len(v) >= self.min_count}
        self._index()
        return self

    def _numeric_value(self, key: str, value: float) -> float:
        if key == self.score_field and 0.0 <= value <= 1.0:
            clipped = min(max(value, 1e-4), 1 - 1e-4)
            return float(np.log(clipped / (1 - clipped)))
        return value

    def _index(self) -> None:
        col = 1
        self._columns = {}
        for key, values in self.levels.items():
            for value in values:
                self._columns[(key, value)] = col
                col += 1
        self._numeric_cols = {}
        for key in self.numeric:
            self._numeric_cols[key] = col
            col += 1

    def encode(self, ctx: Mapping[str, Any]) -> np.ndarray:
        """One context as a vector of length ``dim``."""
        x = np.zeros(self.dim)
        x[0] = 1.0
        for key, value in ctx.items():
            if value is None or value == "":
                continue
            if isinstance(value, str):
                col = self._columns.get((key, value.casefold()))
                if col is not None:
                    x[col] = 1.0
            elif key in self._numeric_cols and isinstance(value, bool | int | float):
                mean, sd = self.numeric[key]
                x[self._numeric_cols[key]] = (self._numeric_value(key, float(value)) - mean) / sd
        return x

    def transform(self, contexts: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Many contexts as an (n, dim) matrix."""
        if not contexts:
            return np.zeros((0, self.dim))
        return np.vstack([self.encode(c) for c in contexts])

    def to_state(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "min_count": self.min_count,
            "max_levels": self.max_levels,
            "score_field": self.score_field,
            "levels": self.levels,
            "numeric": {k: list(v) for k, v in self.numeric.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureEncoder:
        """Inverse of ``to_state``."""
        enc = cls(state["min_count"], state["max_levels"], state["score_field"])
        enc.levels = {k: list(v) for k, v in state["levels"].items()}
        enc.numeric = {k: (float(v[0]), float(v[1])) for k, v in state["numeric"].items()}
        enc._index()
        return enc
