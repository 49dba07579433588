"""Reasons in rep words, derived from the model itself.

**Attribution** (baseline substitution, one feature group at a time): for each declared
column ``g``, ``contribution_g = raw(x) - sum_v w_v * raw(x with g set to v)``, where ``raw`` is
the ensemble's uncalibrated logit and ``(w_v, v)`` is the column's training distribution
(``Featurizer.backgrounds``: level shares, deciles; for text the empty message). Positive means
"this value raises the score compared with what leads usually have here". Calibration is
monotone, so signs carry over.

**Wording**: categorical ``"Source: Reference (+)"`` (missing: ``"Occupation: not given (−)"``),
numeric ``"Time on site: 1,532 (+)"``, text ``'Message: "budget is approved" (+)'`` (a Chinese
cue in Chinese: ``"Message: “本季度预算已经批准” (+)"``). A text column's effect is shared out over
the cue phrases of the lead's text that push the same way (``scoring.cues.CueModel``: meaningful
phrases learnt from the training texts, never stop-words, fragments or the lead's own names),
in proportion to their learnt weights; up to two cues per column, the column's label alone
(``"Message (+)"``) when none of its phrases is known.

``render`` keeps the strongest positives then negatives, each ``|c| >= min_effect``, at most
``text_reasons`` of them about text, within ``max_chars`` (whole reasons only, never a cut word).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.cues import CueModel, quoted
from scoring.features import MISSING, Features, Featurizer, is_missing

PLUS, MINUS = "(+)", "(\u2212)"
MIN_EFFECT = 0.05  # the smallest effect on the raw logit a shown reason has (``render``)


@dataclass(frozen=True)
class Reason:
    """One feature group's effect on one lead's score."""

    column: str
    text: str  # rep-facing words without the sign, e.g. "Source: Reference"
    contribution: float  # change of the raw logit against the reference lead
    text_cue: bool = False  # about a text column (a cue phrase, or the column as a whole)

    def __str__(self) -> str:
        return f"{self.text} {PLUS if self.contribution > 0 else MINUS}"


class KeywordModel:
    """The single-word model of models trained before ``CueModel``; kept so they still load.

    Its words were not readable reasons (stop-words, company names), so they are not shown:
    such a model's text reasons name the column only, until it is retrained.
    """

    weights: dict[str, float]

    def cues(self, text: str, sign: float, names: Any = (), values: Any = (), k: int = 2) -> list[tuple[str, float]]:
        return []


def contributions(featurizer: Featurizer, raw: Any, feats: Features, chunk: int = 256, *,
                  substituted: Any = None) -> np.ndarray:
    """``(n, n_columns)`` baseline-substitution effects on the raw logit; ``raw(feats) -> logits``.

    All substituted copies of a chunk of leads go through the model in one pass.
    ``substituted(part, copies)``, where the model offers one: the logits of ``part`` followed
    by those of each ``(column number, copy)`` in ``copies`` — what ``raw`` gives on them stacked,
    computed knowing which column each copy changes (``Ensemble.substituted_logits``).
    """
    n_groups = len(featurizer.spec.columns)
    out = np.zeros((len(feats), n_groups))
    for start in range(0, len(feats), chunk):
        part = feats.take(np.arange(start, min(start + chunk, len(feats))))
        m = len(part)
        plan = [(g, w) for g in range(n_groups) for w, _ in featurizer.backgrounds[g]]
        copies = [(g, featurizer.with_value(part, g, v)) for g in range(n_groups) for _, v in featurizer.backgrounds[g]]
        z = substituted(part, copies) if substituted is not None else raw(Features.stack([part, *(c for _, c in copies)]))
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
             cues: Mapping[str, CueModel | KeywordModel], names: Sequence[str] = (),
             row: Mapping[str, Any] | None = None) -> list[Reason]:
    """The reasons for column number ``g`` of row ``i`` with contribution ``c``: one, or for a
    text column up to two cue phrases sharing ``c`` (``names``: the lead's own, never quoted).
    ``row``: row ``i`` of ``feats.raw`` as a mapping, when the caller has it (reading a
    DataFrame row per reason cost a third of a backfill's scoring time)."""
    spec = featurizer.spec
    col = spec.columns[g]
    label = spec.label(col)
    if row is None:
        row = feats.raw.iloc[i]
    value = row[col]
    n_num, n_cat = len(spec.numeric), len(spec.categorical)
    if g < n_num + n_cat:
        missing = is_missing(value, spec.missing_values) if g < n_num else feats.codes[i, g - n_num] == MISSING
        if missing:
            return [Reason(col, f"{label}: not given", c)]
        shown = _fmt_number(value) if g < n_num else " ".join(str(value).split())[:40]
        return [Reason(col, f"{label}: {shown}", c)]
    text = "" if is_missing(value, ()) else str(value)
    if not text.strip():
        return [Reason(col, f"{label}: none", c, text_cue=True)]
    model = cues.get(col)
    said = [str(row[other]) for other in spec.categorical if not is_missing(row[other], spec.missing_values)]
    found = model.cues(text, float(np.sign(c)), names, said) if model is not None else []
    if not found:
        return [Reason(col, label, c, text_cue=True)]
    total = sum(w for _, w in found)
    return [Reason(col, quoted(label, phrase), c * w / total, text_cue=True) for phrase, w in found]


def is_text_column(featurizer: Featurizer, g: int) -> bool:
    spec = featurizer.spec
    return g >= len(spec.numeric) + len(spec.categorical)


def may_show(featurizer: Featurizer, g: int, c: float, min_effect: float = MIN_EFFECT) -> bool:
    """Whether column ``g`` with effect ``c`` can contribute to what :func:`render` shows.

    A text column's cue phrases share its effect, so each is at most ``|c|``: below
    ``min_effect`` none is shown, and since every shown reason is at least ``min_effect`` and
    outranks them, leaving them out changes neither the text-reason cap nor the result. Finding
    cue phrases is the costly part of a reason, so the score path skips those columns."""
    return abs(c) >= min_effect or not is_text_column(featurizer, g)


def render(reasons: Sequence[Reason], max_chars: int = 250, *, positives: int = 3, negatives: int = 2,
           min_effect: float = MIN_EFFECT, text_reasons: int = 2) -> str:
    """``"A (+); B (+); C (−)"`` within ``max_chars``: strongest positives first, then negatives;
    at most ``text_reasons`` about text (the strongest)."""
    strongest = sorted((r for r in reasons if r.text_cue), key=lambda r: -abs(r.contribution))
    shown = [r for r in reasons if not r.text_cue or r in strongest[:text_reasons]]
    pos = sorted((r for r in shown if r.contribution >= min_effect), key=lambda r: -r.contribution)[:positives]
    neg = sorted((r for r in shown if r.contribution <= -min_effect), key=lambda r: r.contribution)[:negatives]
    out: list[str] = []
    for r in [*pos, *neg]:
        piece = str(r)
        if len(piece) > max_chars:  # one over-long value: cut inside it, keep the sign
            piece = piece[: max_chars - 5].rstrip() + "\u2026 " + piece[-3:]
        if len("; ".join([*out, piece])) <= max_chars:
            out.append(piece)
    return "; ".join(out) if out else "No single factor stands out"
