"""Training: rows + labels (or a CSV export) -> ``LeadScorer`` + ``TrainReport``.

``train_scorer(rows, labels, spec=None, encoder=None, seed=0, timestamps=None)``:

- ``spec=None`` means ``FeatureSpec.for_crm_leads()`` (mappings from ``Lead.features()``).
- Validation split: with ``timestamps`` the newest ``validation_fraction`` of the leads
  (a model must predict the future; ``None`` timestamps count as oldest); without, a stratified
  random split with ``seed``. If the time split leaves one class in validation it falls back to
  stratified and says so in ``TrainReport.split``.
- The model (features, cross-fitted candidates, blend choice, calibration — see
  ``scoring.ensemble``) is fitted on the training part only. The validation part is never
  seen in fitting: it gives the reported metrics and is kept in the report for
  champion/challenger comparison. The opportunity threshold for ``target_precision`` is read
  off the validation scores together with the training part's out-of-fold scores
  (``scoring.model.opportunity_cut``; ``TrainReport.opportunity_note`` says what it flags or
  why there is none).
- ``refit=True`` (default): with those choices made, the model is fitted once more on all
  rows, so the deployed model learns from the newest leads too. The reported metrics stay
  those of the held-out model (honest, slightly conservative).

``read_csv_export`` / ``split_label`` / ``evaluate_csv`` serve the CLI (``leadpilot evaluate``,
``leadpilot train``); their errors are ``DataError`` with a message that says what to fix.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring import metrics as M
from scoring.cues import CueModel
from scoring.ensemble import ModelConfig, fit_ensemble
from scoring.features import FeatureSpec, Featurizer, Rows, to_frame
from scoring.model import LeadScorer, default_grade_thresholds, opportunity_cut


class DataError(ValueError):
    """Training data that cannot be used as given (the message says why and what to do)."""


@dataclass
class TrainReport:
    """What training measured on the held-out validation data, and what it chose."""

    metrics: dict[str, float]
    reliability: list[dict[str, float]]
    n_train: int
    n_validation: int
    split: str
    window: tuple[str | None, str | None]
    model: dict[str, Any]
    opportunity_threshold: float | None
    grade_thresholds: tuple[float, float, float]
    opportunity_note: str = ""  # what the threshold flags, or why there is none
    target_precision: float | None = None
    validation_rows: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    validation_labels: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the validation rows)."""
        return {**self.metrics, "n_train": self.n_train, "n_validation": self.n_validation, "split": self.split,
                "window": list(self.window), "model": self.model,
                "opportunity_threshold": self.opportunity_threshold, "opportunity_note": self.opportunity_note,
                "target_precision": self.target_precision,
                "grade_thresholds": list(self.grade_thresholds), "reliability": self.reliability}


def _labels(labels: Sequence[Any]) -> np.ndarray:
    y = np.array([int(v) if isinstance(v, bool | np.bool_) else v for v in labels], dtype=object)
    bad = sorted({repr(v) for v in y if v not in (0, 1)})
    if bad:
        raise DataError(f"labels must be 0/1 or booleans; found {', '.join(bad[:5])}")
    return y.astype(int)


def _split(y: np.ndarray, stamps: Sequence[datetime | None] | None, fraction: float,
           seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if stamps is not None:
        if len(stamps) != len(y):
            raise DataError(f"{len(stamps)} timestamps for {len(y)} leads; give one per lead or none")
        key = [(s is not None, s.timestamp() if s is not None else 0.0, i) for i, s in enumerate(stamps)]
        order = np.array([k[2] for k in sorted(key)])
        cut = len(y) - max(1, int(round(fraction * len(y))))
        fit, val = np.sort(order[:cut]), np.sort(order[cut:])
        if np.unique(y[val]).size == 2 and np.bincount(y[fit], minlength=2).min() >= 2:
            return fit, val, "time"
        split = "stratified (the newest leads had one class only)"
    else:
        split = "stratified"
    fit, val = train_test_split(idx, test_size=fraction, stratify=y, random_state=seed)
    return np.sort(fit), np.sort(val), split


def train_scorer(rows: Rows, labels: Sequence[Any], spec: FeatureSpec | None = None, encoder: Any = None,
                 seed: int = 0, timestamps: Sequence[datetime | None] | None = None, *,
                 config: ModelConfig | None = None, validation_fraction: float = 0.2,
                 target_precision: float = 0.6, grade_thresholds: tuple[float, float, float] | None = None,
                 max_reasons_chars: int = 250, refit: bool = True) -> tuple[LeadScorer, TrainReport]:
    """Train a calibrated ``LeadScorer``; see the module docstring."""
    spec = spec or FeatureSpec.for_crm_leads()
    frame = to_frame(rows, spec.columns)
    y = _labels(labels)
    if len(y) != len(frame):
        raise DataError(f"{len(frame)} rows but {len(y)} labels; give one label per row")
    counts = np.bincount(y, minlength=2)
    if counts.min() < 4:
        raise DataError(f"training needs at least 4 converted and 4 not converted leads; got {counts[1]} and "
                        f"{counts[0]}")
    if not 0 < validation_fraction < 1:
        raise DataError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    fit_idx, val_idx, split = _split(y, timestamps, validation_fraction, seed)
    cfg = config or ModelConfig()
    grades = grade_thresholds or default_grade_thresholds(float(y[fit_idx].mean()))
    options = {"grade_thresholds": grades, "max_reasons_chars": max_reasons_chars, "encoder": encoder}
    held_out = LeadScorer(*_fit(frame.iloc[fit_idx], y[fit_idx], spec, encoder, cfg, seed),
                          opportunity_threshold=None, **options)
    val_frame = frame.iloc[val_idx].reset_index(drop=True)
    p_val = held_out.predict_proba(val_frame)
    # The threshold is read off every lead scored out of sample: the training part's out-of-fold
    # scores and the validation part's. The validation part alone (a fifth of a young org's
    # history: ~170 leads, ~35 converted at 1,000 leads) is too few to see any precision reached.
    oof, held_out.ensemble.oof = held_out.ensemble.oof, None
    pooled = p_val if oof is None else np.concatenate([held_out.ensemble.calibrator(oof), p_val])
    threshold, note = opportunity_cut(np.concatenate([y[fit_idx], y[val_idx]])[-len(pooled):], pooled,
                                      target_precision)
    scorer = held_out
    if refit:
        scorer = LeadScorer(*_fit(frame, y, spec, encoder, cfg, seed), opportunity_threshold=None, **options)
        scorer.ensemble.oof = None
    scorer.opportunity_threshold, scorer.opportunity_note = threshold, note
    stamps = [s for s in (timestamps or []) if s is not None]
    window = (min(stamps).isoformat(), max(stamps).isoformat()) if stamps else (None, None)
    report = TrainReport(
        metrics=M.evaluate(y[val_idx], p_val), reliability=M.reliability_table(y[val_idx], p_val),
        n_train=len(y) if refit else len(fit_idx), n_validation=len(val_idx), split=split, window=window,
        model={"name": scorer.describe_model(), "target_precision": target_precision, "refit_on_all": refit,
               **scorer.ensemble.report},
        opportunity_threshold=threshold, opportunity_note=note, target_precision=target_precision,
        grade_thresholds=grades,
        validation_rows=val_frame, validation_labels=y[val_idx])
    return scorer, report


def _fit(frame: pd.DataFrame, y: np.ndarray, spec: FeatureSpec, encoder: Any, cfg: ModelConfig,
         seed: int) -> tuple[Featurizer, Any, dict[str, CueModel]]:
    frame = frame.reset_index(drop=True)
    featurizer = Featurizer(spec, seed)
    feats = featurizer.fit_transform(frame, encoder, y if cfg.text_signal else None)
    ensemble = fit_ensemble(featurizer, feats, y, cfg, seed)
    cues = {c: CueModel(seed=seed).fit([featurizer._text(v) for v in frame[c]], y) for c in spec.text}
    return featurizer, ensemble, cues


# ---------------------------------------------------------------------------------- CSV exports
def sniff_sep(path: Path) -> str:
    """``,`` or ``;`` (or tab), whichever splits the header line into more fields."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        header = fh.readline()
    return max([",", ";", "\t"], key=lambda s: len(next(csv.reader([header], delimiter=s), [])))


def split_label(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``COLUMN`` (0/1, true/false, yes/no) or ``COLUMN=POSITIVE_VALUE`` -> (features frame, 0/1 labels)."""
    column, _, positive = label.partition("=")
    column = column.strip()
    if column not in frame.columns:
        raise DataError(f"label column {column!r} is not in the file; columns are: {', '.join(map(str, frame.columns))}")
    values = frame[column]
    known = values.notna() & (values.astype(str).str.strip() != "")
    values = values[known]
    if positive:
        y = (values.astype(str).str.strip() == positive.strip()).astype(int).to_numpy()
    else:
        table = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "yes": 1, "no": 0}
        text = values.astype(str).str.strip().str.lower()
        bad = sorted(set(text[~text.isin(list(table))]))
        if bad:
            raise DataError(f"label column {column!r} is not 0/1 or true/false (found {', '.join(bad[:5])}); "
                            f"name the positive value: --label {column}=VALUE")
        y = text.map(table).astype(int).to_numpy()
    if np.unique(y).size < 2:
        raise DataError(f"label {label!r} has one class only ({int(y[0]) if y.size else 'no rows'}); "
                        "training needs converted and not converted leads")
    return frame.loc[known].drop(columns=[column]).reset_index(drop=True), y


def read_csv_export(path: str | Path, label: str, *, drop: Sequence[str] = (), text_columns: Sequence[str] = (),
                    sep: str = "auto") -> tuple[pd.DataFrame, np.ndarray, FeatureSpec]:
    """Read a CSV export: features frame, labels and the spec declared from it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; export the leads with a header row")
    try:
        frame = pd.read_csv(path, sep=sniff_sep(path) if sep == "auto" else sep, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} has no header or rows; export the leads with a header row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} could not be read as CSV ({str(exc)[:200]}); check --sep") from None
    frame = frame.loc[:, [not str(c).startswith("Unnamed:") for c in frame.columns]]
    if frame.empty:
        raise DataError(f"{path} has a header but no rows")
    missing = [c for c in [*drop, *text_columns] if c not in frame.columns]
    if missing:
        raise DataError(f"column(s) not in {path.name}: {', '.join(missing)}; columns are: "
                        f"{', '.join(map(str, frame.columns))}")
    features, y = split_label(frame.drop(columns=list(drop)), label)
    if features.shape[1] == 0:
        raise DataError("no feature columns left after the label and --drop")
    return features, y, FeatureSpec.infer(features, text=text_columns)


def holdout(features: pd.DataFrame, y: np.ndarray, spec: FeatureSpec, *, test_size: float = 0.25, seed: int = 0,
            encoder: Any = None, config: ModelConfig | None = None) -> tuple[LeadScorer, np.ndarray, np.ndarray]:
    """Stratified split; train on the training part only. Returns (scorer, test indices, test probabilities)."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise DataError(f"--test-size must be between 0 and 1, got {test_size}")
    if np.bincount(y, minlength=2).min() < 10:
        raise DataError("evaluation needs at least 10 leads of each class")
    tr, te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    scorer, _ = train_scorer(features.iloc[tr], y[tr], spec, encoder=encoder, seed=seed, config=config)
    return scorer, te, scorer.predict_proba(features.iloc[te])


def evaluate_frame(features: pd.DataFrame, y: np.ndarray, spec: FeatureSpec, *, test_size: float = 0.25,
                   seed: int = 0, encoder: Any = None, config: ModelConfig | None = None) -> dict[str, Any]:
    """``holdout`` + metrics on the test part: the ``leadpilot evaluate`` JSON."""
    scorer, te, p = holdout(features, y, spec, test_size=test_size, seed=seed, encoder=encoder, config=config)
    out = M.evaluate(y[te], p)
    return {"roc_auc": out["roc_auc"], "pr_auc": out["pr_auc"], "brier": out["brier"], "ece": out["ece"],
            "lift_top_decile": out["lift_top_decile"], "n_train": int(len(y) - len(te)), "n_test": int(len(te)),
            "model": scorer.describe_model()}


def frame_rows(frame: pd.DataFrame) -> list[Mapping[str, Any]]:
    """A frame as a list of row mappings (what ``LeadScorer.score`` takes from the daemon)."""
    return frame.to_dict(orient="records")
