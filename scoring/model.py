"""``LeadScorer``: calibrated probability, score, grade, opportunity flag and reasons per lead.

Made by :func:`scoring.training.train_scorer`; used like a scikit-learn estimator::

    scorer.predict_proba(rows)  # np.ndarray of calibrated P(convert), one per row
    scorer.score(rows)          # list[Score]: probability, score 0-100, grade, opportunity, reasons
    scorer.explain(rows)        # list[list[Reason]]: every column's effect, strongest first

``rows`` are mappings (e.g. ``Lead.features()``) or a DataFrame holding the spec's columns;
absent keys are missing values. A model that reads text needs the same ``TextEncoder`` it was
trained with (``attach_encoder``); the encoder is not pickled with the model.

**Grades**: ``grade_thresholds = (a, b, c)`` are the lower bounds of A, B and C on the
calibrated probability (below ``c`` is D). The default is by expected conversion relative to
the training base rate ``r``: A from ``min(2r, (1+r)/2)`` (twice the usual rate), B from ``r``,
C from ``r/2``.
**Opportunity**: ``p >= opportunity_threshold``, the lowest threshold whose precision among the
leads scored out of sample in training reaches the target (:func:`opportunity_cut`; ``None``:
it could not be set, and ``opportunity_note`` says why — too few converted leads, or no cut
reaching the precision; nothing is flagged then).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scoring.cues import CueModel, lead_names
from scoring.ensemble import Ensemble
from scoring.features import Features, FeatureSpec, Featurizer, Rows
from scoring.reasons import KeywordModel, Reason, contributions, describe, may_show, render
from scoring.types import Score


def default_grade_thresholds(base_rate: float) -> tuple[float, float, float]:
    """Lower bounds of A, B, C from the base conversion rate (see the module docstring)."""
    r = float(min(max(base_rate, 1e-3), 0.99))
    return (min(2 * r, (1 + r) / 2), r, r / 2)


def precision_threshold(y: Any, p: Any, target: float, min_flagged: int = 5, *,
                        stable: tuple[float, int] | None = None) -> float | None:
    """Lowest probability cut whose precision among ``p >= cut`` is at least ``target``.

    ``stable=(delta, m)``: cut only where lowering it by ``delta`` would flag fewer than ``m``
    more leads — never inside a dense cluster of near-equal scores, where the model trained
    next (or the next leads) would put the cluster on the other side and flag it whole."""
    ya, pa = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(-pa, kind="stable")
    ys, ps = ya[order], pa[order]
    hits = np.cumsum(ys)
    best = None
    for i in range(len(ps)):
        # only cut where the next probability differs: ties are flagged together
        if i + 1 < len(ps) and ps[i + 1] == ps[i]:
            continue
        if stable is not None and i + stable[1] < len(ps) and ps[i] - ps[i + stable[1]] < stable[0]:
            continue
        if i + 1 >= min(min_flagged, len(ps)) and hits[i] / (i + 1) >= target:
            best = float(ps[i])
    return best


MIN_POSITIVES = 20  # converted leads below which no precision can be told from noise


def opportunity_cut(y: Any, p: Any, target: float, *, min_positives: int = MIN_POSITIVES,
                    min_flagged: int = 5) -> tuple[float | None, str]:
    """The opportunity threshold for ``target`` precision on out-of-sample scores ``p`` of leads
    with outcomes ``y``, and a sentence saying what it flags or why there is none."""
    ya, pa = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    n, positives = len(ya), int(ya.sum())
    if positives < min_positives:
        return None, (f"too few positives to set a threshold at precision {target:.2f}: {positives} converted "
                      f"leads, need {min_positives}; nothing is flagged until more leads have closed")
    cut = precision_threshold(ya, pa, target, min_flagged, stable=(0.01, max(min_flagged, n // 100)))
    if cut is None:
        order = np.argsort(-pa, kind="stable")
        hits = np.cumsum(ya[order]) / np.arange(1, n + 1)
        k = min(min_flagged, n)
        best = int(np.argmax(hits[k - 1:])) + k
        return None, (f"no threshold reaches precision {target:.2f}: among {n} leads scored out of sample the "
                      f"best cut converts {hits[best - 1]:.2f} (its top {best}); nothing is flagged — lower the "
                      "target precision or wait for more history")
    flagged = pa >= cut
    return cut, (f"flags leads at P(convert) >= {cut:.2f}: {int(flagged.sum())} of {n} leads scored out of sample, "
                 f"{int(ya[flagged].sum())} converted (precision {ya[flagged].mean():.2f}, target {target:.2f})")


class LeadScorer:
    """A trained, calibrated lead model; see the module docstring."""

    def __init__(self, featurizer: Featurizer, ensemble: Ensemble, keywords: Mapping[str, CueModel | KeywordModel], *,
                 opportunity_threshold: float | None, grade_thresholds: tuple[float, float, float],
                 max_reasons_chars: int = 250, version: str = "unregistered", encoder: Any = None) -> None:
        a, b, c = grade_thresholds
        if not 1 >= a > b > c >= 0:
            raise ValueError(f"grade thresholds must fall strictly from A to C within [0, 1], got {grade_thresholds}")
        self.featurizer, self.ensemble, self.keywords = featurizer, ensemble, dict(keywords)
        self.opportunity_threshold = opportunity_threshold
        self.opportunity_note = ""  # what the threshold flags, or why there is none (set by training)
        self.grade_thresholds = (float(a), float(b), float(c))
        self.max_reasons_chars = max_reasons_chars
        self.version = version
        self.encoder: Any = None
        if encoder is not None:
            self.attach_encoder(encoder)

    def __repr__(self) -> str:
        return (f"LeadScorer(version={self.version!r}, columns={len(self.spec.columns)}, "
                f"model={self.describe_model()!r})")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["encoder"] = None  # the encoder is a setting of the deployment, not part of the model
        return state

    @property
    def spec(self) -> FeatureSpec:
        """The declared columns this model reads."""
        return self.featurizer.spec

    @property
    def model_version(self) -> str:
        """The registry version (``Scorer`` protocol name)."""
        return self.version

    @property
    def needs_encoder(self) -> bool:
        """True when the model reads text through a ``TextEncoder``."""
        return self.featurizer.encoder_id is not None

    def attach_encoder(self, encoder: Any) -> LeadScorer:
        """Use ``encoder`` for text; it must be the model the scorer was trained with."""
        want = self.featurizer.encoder_id
        if encoder is not None and want is not None and getattr(encoder, "model_id", None) != want:
            raise ValueError(f"this model was trained with text encoder {want!r} but was given "
                             f"{getattr(encoder, 'model_id', None)!r}; configure that encoder or retrain")
        self.encoder = encoder
        return self

    def describe_model(self) -> str:
        """Short name of the chosen candidate and calibration, e.g. ``"blend(hgb=0.5)+isotonic"``."""
        w = self.ensemble.weight
        name = "logistic" if w == 0 else "hgb" if w == 1 else f"blend(hgb={w:g})"
        return f"{name}+{self.ensemble.calibrator.method}"

    def features(self, rows: Rows) -> Features:
        """Transform rows with the fitted featurizer (and the attached encoder)."""
        return self.featurizer.transform(rows, self.encoder)

    def predict_proba(self, rows: Rows) -> np.ndarray:
        """Calibrated P(convert) per row."""
        return self.ensemble.probability(self.featurizer, self.features(rows))

    def explain(self, rows: Rows) -> list[list[Reason]]:
        """Every column's effect per row, strongest (by absolute size) first; a text column's
        effect comes as up to two cue phrases of the lead's text sharing it.

        A row's ``company``, ``first_name``, ``last_name``, ``name`` and ``full_name`` (when given)
        are never quoted in its reasons."""
        if not isinstance(rows, Sequence) and not hasattr(rows, "iloc"):
            rows = list(rows)
        return self._explain(self.features(rows), lead_names(rows))

    def _explain(self, feats: Features, names: Sequence[Sequence[str]], *,
                 shown_only: bool = False) -> list[list[Reason]]:
        """Reasons per row, strongest first. ``shown_only``: only the columns whose reasons
        ``render`` can show (``reasons.may_show``): the score path, where the rest is never read."""
        effects = contributions(self.featurizer, lambda f: self.ensemble.raw_logit(self.featurizer, f), feats,
                                substituted=lambda part, copies: self.ensemble.substituted_logits(
                                    self.featurizer, part, copies))
        rows = feats.raw.to_dict("records")
        out = []
        for i, row in enumerate(rows):
            order = np.argsort(-np.abs(effects[i]), kind="stable")
            out.append([r for g in order
                        if not shown_only or may_show(self.featurizer, int(g), float(effects[i, g]))
                        for r in describe(self.featurizer, feats, i, int(g), float(effects[i, g]),
                                          self.keywords, names[i], row)])
        return out

    def grade(self, p: float) -> str:
        """"A".."D" for a calibrated probability."""
        a, b, c = self.grade_thresholds
        return "A" if p >= a else "B" if p >= b else "C" if p >= c else "D"

    def score(self, rows: Rows) -> list[Score]:
        """One :class:`Score` per row (see the module docstring)."""
        if not isinstance(rows, Sequence) and not hasattr(rows, "iloc"):
            rows = list(rows)
        if len(rows) == 0:
            return []
        feats = self.features(rows)
        probs = self.ensemble.probability(self.featurizer, feats)
        reasons = self._explain(feats, lead_names(rows), shown_only=True)
        cut = self.opportunity_threshold
        return [Score(probability=float(p), score=int(round(100 * float(p))), grade=self.grade(float(p)),
                      opportunity=cut is not None and float(p) >= cut,
                      reasons=render(r, self.max_reasons_chars), model_version=self.version)
                for p, r in zip(probs, reasons, strict=True)]
