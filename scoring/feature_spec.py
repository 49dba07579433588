"""``FeatureSpec``: the declared columns of a model, and what counts as missing.

Split from ``scoring.features`` (which re-exports everything here); see that module for how
each kind of column is transformed.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

Rows: TypeAlias = Sequence[Mapping[str, Any]] | pd.DataFrame


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns a model reads and how. ``labels`` maps a column to the name reps see."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    missing_values: tuple[str, ...] = ("select",)
    min_count: int = 10
    max_levels: int = 60
    clip_quantile: float = 0.01
    spline_knots: int = 10
    text_components: int = 16

    def __post_init__(self) -> None:
        seen: Counter[str] = Counter([*self.numeric, *self.categorical, *self.text])
        dup = sorted(c for c, n in seen.items() if n > 1)
        if dup:
            raise ValueError(f"columns declared twice in FeatureSpec: {', '.join(dup)}; declare each once")
        if not seen:
            raise ValueError("FeatureSpec declares no columns; name numeric, categorical or text columns")
        if not 0 <= self.clip_quantile < 0.5:
            raise ValueError(f"clip_quantile must be in [0, 0.5), got {self.clip_quantile}")
        if self.min_count < 1 or self.max_levels < 1 or self.spline_knots < 2 or self.text_components < 1:
            raise ValueError("min_count, max_levels, text_components must be >= 1 and spline_knots >= 2")

    @property
    def columns(self) -> tuple[str, ...]:
        """Every declared column, numeric first, then categorical, then text."""
        return (*self.numeric, *self.categorical, *self.text)

    def label(self, column: str) -> str:
        """The rep-facing name of ``column``: its label, else ``snake_case`` humanised, else the name as is."""
        if column in self.labels:
            return self.labels[column]
        if "_" in column or column.islower():
            return column.replace("_", " ").strip().capitalize()
        return column.strip()

    @classmethod
    def for_crm_leads(cls) -> FeatureSpec:
        """The spec for ``connectors.records.Lead.features()`` mappings.

        ``status`` is left out on purpose: reps change it while working a lead ("Working",
        "Closed - Converted"), so it leaks the outcome; ``company`` is a near-unique name.
        """
        return cls(
            numeric=("employees", "revenue"),
            categorical=("title", "industry", "country", "source"),
            text=("text",),
            labels={"employees": "Employees", "revenue": "Revenue", "title": "Title",
                    "industry": "Industry", "country": "Country", "source": "Source", "text": "Message"},
        )

    @classmethod
    def infer(cls, frame: pd.DataFrame, *, text: Iterable[str] = (), **options: Any) -> FeatureSpec:
        """Declare a spec from a training frame's dtypes (numeric dtype -> numeric, rest categorical)."""
        text = tuple(text)
        missing = [c for c in text if c not in frame.columns]
        if missing:
            raise ValueError(f"text column(s) not in the data: {', '.join(missing)}")
        numeric = tuple(c for c in frame.columns if c not in text and pd.api.types.is_numeric_dtype(frame[c])
                        and not pd.api.types.is_bool_dtype(frame[c]))
        categorical = tuple(c for c in frame.columns if c not in text and c not in numeric)
        return cls(numeric=numeric, categorical=categorical, text=text, **options)


def is_missing(value: Any, tokens: Iterable[str] = ("select",)) -> bool:
    """True for None, NaN, blank strings and the (case-insensitive) ``tokens``."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        s = value.strip()
        return not s or s.casefold() in {t.casefold() for t in tokens}
    return bool(pd.isna(value)) if np.isscalar(value) else False


def to_frame(rows: Rows, columns: Sequence[str]) -> pd.DataFrame:
    """Rows (mappings or a DataFrame) as an object frame with exactly ``columns`` (absent -> None)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    frame = frame.reset_index(drop=True)
    return pd.DataFrame({c: frame[c] if c in frame.columns else [None] * len(frame) for c in columns},
                        dtype=object)


def _level(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value).strip())


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.number):
        x = float(value)
    else:
        try:
            x = float(str(value).strip().replace(",", ""))
        except ValueError:
            return math.nan
    return x if math.isfinite(x) else math.nan
