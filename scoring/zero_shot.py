"""Cold start: score leads with an instruction-tuned seq2seq model (Flan-T5 style), zero-shot.

With no labelled history there is nothing to train on, so the lead card is put to the
model as a question and the answer's first token decides:

    P(yes) = softmax([logit_yes, logit_no])[0]

over the logits of the **first decoder step** (decoder input = the start token only),
restricted to the token ids of "yes" and "no". This is a proper probability of answering
yes rather than no (the seed's ``sigmoid(output[0][0])`` of a seq2seq forward is not).
Where a tokenizer splits "yes" (or "no") into several pieces, the first piece is the one
the model must emit first, so its logit is used; a bare word-boundary piece ("▁") is
skipped because it does not tell yes from no.

Optional prior blend (documented, linear in probability):

    p = (1 - prior_weight) * P(yes) + prior_weight * prior

e.g. ``prior`` = the historical conversion rate and ``prior_weight`` = 0.5 to pull an
uncalibrated zero-shot estimate toward the base rate. ``prior_weight = 0`` (default) uses
the model alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scoring.encoder import load_pretrained, pick_device, resolve_model
from scoring.types import Score

ENV_SETTING = "LEADPILOT_SCORING__ZERO_SHOT_MODEL"
DEFAULT_TEMPLATE = (
    "Is this lead a sales opportunity? A sales opportunity is a lead with a real need, "
    "budget or buying intent.\n\n{card}\n\nAnswer yes or no."
)
REASON = "No trained model yet: zero-shot text estimate"
_CARD_VALUE_CHARS = 200  # a structured field longer than this is noise on the card
_WORD_BOUNDARY = {"▁", "Ġ", " ", ""}


def lead_card(row: Mapping[str, Any], *, text_key: str = "text", max_text_chars: int = 2000) -> str:
    """The lead as short "Field: value" lines, empty/None/"Select" fields left out, free text last."""
    lines = []
    for key, value in row.items():
        if key == text_key or not _present(value) or isinstance(value, Mapping | list | tuple | set):
            continue
        label = str(key).replace("_", " ").strip().capitalize()
        lines.append(f"{label}: {_fmt(value)[:_CARD_VALUE_CHARS]}")
    text = row.get(text_key)
    if _present(text):
        lines.append(f"Message: {str(text).strip()[:max_text_chars]}")
    return "\n".join(lines) if lines else "(no details)"


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and np.isnan(value):
        return False
    return not (isinstance(value, str) and value.strip() in {"", "Select"})


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _grade(p: float, thresholds: tuple[float, float, float]) -> str:
    for grade, low in zip("ABC", thresholds, strict=True):
        if p >= low:
            return grade
    return "D"


class ZeroShotScorer:
    """P(yes) of a seq2seq model to "is this lead a sales opportunity?" as :class:`Score` values.

    ``model``: local directory or hub id (loaded like the encoder: a directory offline).
    ``opportunity_threshold`` and ``grade_thresholds`` (lower bounds of A, B, C) apply to
    the blended probability. The model's answer is not calibrated; grades say so in reasons.
    """

    def __init__(
        self,
        model: str,
        prior: float | None = None,
        prior_weight: float = 0.0,
        template: str = DEFAULT_TEMPLATE,
        *,
        opportunity_threshold: float = 0.5,
        grade_thresholds: tuple[float, float, float] = (0.75, 0.5, 0.25),
        batch_size: int = 16,
        max_length: int = 512,
        device: str | torch.device | None = None,
    ) -> None:
        _validate(model, prior, prior_weight, template, opportunity_threshold, grade_thresholds, batch_size)
        from transformers import AutoModelForSeq2SeqLM

        source, local = resolve_model(model, setting=ENV_SETTING)
        self._tokenizer, self._model = load_pretrained(
            AutoModelForSeq2SeqLM, model, source, local, setting=ENV_SETTING, what="zero-shot model",
            hint="a seq2seq model directory (e.g. a saved Flan-T5) or a hub id available offline")
        self.device = pick_device(device)
        self._model.to(self.device).eval()
        self.yes_id, self.no_id = self._answer_ids()
        start = self._model.config.decoder_start_token_id
        if start is None:
            raise ValueError(
                f"zero-shot model {model!r} has no decoder_start_token_id; is it a seq2seq model?"
            )
        self._start_id = int(start)
        self.prior, self.prior_weight, self.template = prior, prior_weight, template
        self.opportunity_threshold, self.grade_thresholds = opportunity_threshold, grade_thresholds
        self.batch_size, self.max_length = batch_size, max_length
        # Tokens left for the card: max_length minus the template's own tokens (specials included).
        overhead = len(self._tokenizer(template.replace("{card}", ""))["input_ids"])
        if overhead + 8 > max_length:
            raise ValueError(
                f"max_length {max_length} leaves no room for a lead card after the template's {overhead} tokens"
            )
        self._card_budget = max_length - overhead - 1  # 1 spare: pieces may merge at the seam
        self.model_version = f"zero-shot:{Path(source).name if local else model}"

    def __repr__(self) -> str:
        return f"ZeroShotScorer(model_version={self.model_version!r}, prior_weight={self.prior_weight})"

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Blended P(yes) for each already-rendered prompt body (the lead card), float64 (n,)."""
        raw = self._p_yes(self.prompts(texts))
        return np.array([self._blend(float(q)) for q in raw], dtype=np.float64)

    def prompts(self, texts: Sequence[str]) -> list[str]:
        """The prompts put to the model: each card cut (in tokens) so the whole prompt fits
        ``max_length`` and the closing instruction ("Answer yes or no.") is never truncated away."""
        # str.replace, not str.format: a template may contain other braces (e.g. a JSON example)
        return [self.template.replace("{card}", self._fit(t)) for t in texts]

    def _fit(self, card: str | None) -> str:
        card = "" if card is None else str(card)
        if not card:
            return card
        enc = self._tokenizer(card, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) <= self._card_budget:
            return card
        return card[: enc["offset_mapping"][self._card_budget - 1][1]]

    def score(self, rows: Sequence[Mapping[str, Any]]) -> list[Score]:
        """One :class:`Score` per row (a lead's feature mapping, e.g. ``Lead.features()``)."""
        raw = self._p_yes(self.prompts([lead_card(row) for row in rows]))
        return [self._to_score(self._blend(float(q)), float(q)) for q in raw]

    def _blend(self, p_yes: float) -> float:
        if self.prior is not None and self.prior_weight > 0:
            return (1.0 - self.prior_weight) * p_yes + self.prior_weight * self.prior
        return p_yes

    def _to_score(self, p: float, p_yes: float) -> Score:
        # What the number rests on, for the rep reading it: the model's answer, and the base
        # rate blended in when there is one.
        reasons = f"{REASON} from the lead's text, P(yes)={p_yes:.2f} ({self.model_version})"
        if self.prior is not None and self.prior_weight > 0:
            reasons += f", blended {self.prior_weight:.0%} with the org's conversion rate {self.prior:.0%}"
        return Score(
            probability=p,
            score=int(round(100 * p)),
            grade=_grade(p, self.grade_thresholds),
            opportunity=p >= self.opportunity_threshold,
            reasons=reasons,
            model_version=self.model_version,
        )

    def _p_yes(self, prompts: list[str]) -> np.ndarray:
        out = np.empty(len(prompts), dtype=np.float64)
        if not prompts:
            return out
        lengths = [len(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])  # similar lengths pad less
        pair = torch.tensor([self.yes_id, self.no_id], device=self.device)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                enc = self._tokenizer(
                    [prompts[i] for i in batch],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                decoder_input = torch.full((len(batch), 1), self._start_id, device=self.device)
                logits = self._model(
                    input_ids=enc["input_ids"].to(self.device),
                    attention_mask=enc["attention_mask"].to(self.device),
                    decoder_input_ids=decoder_input,
                ).logits[:, 0, :]
                probs = torch.softmax(logits.index_select(1, pair).float(), dim=1)[:, 0]
                out[batch] = probs.cpu().numpy()
        return out

    def _answer_ids(self) -> tuple[int, int]:
        ids = []
        for word in ("yes", "no"):
            pieces = self._tokenizer(word, add_special_tokens=False)["input_ids"]
            tokens = self._tokenizer.convert_ids_to_tokens(pieces)
            picked = [i for i, tok in zip(pieces, tokens, strict=True) if tok not in _WORD_BOUNDARY]
            if not picked or picked[0] == self._tokenizer.unk_token_id:
                raise ValueError(f"the zero-shot model's tokenizer has no token for {word!r}")
            ids.append(int(picked[0]))
        if ids[0] == ids[1]:
            raise ValueError("the zero-shot model's tokenizer maps 'yes' and 'no' to the same first token")
        return ids[0], ids[1]


def _validate(
    model: str,
    prior: float | None,
    prior_weight: float,
    template: str,
    threshold: float,
    grades: tuple[float, float, float],
    batch_size: int,
) -> None:
    if not model:
        raise ValueError(
            f"no zero-shot model configured; set {ENV_SETTING} to a seq2seq model directory or hub id"
        )
    if not 0.0 <= prior_weight <= 1.0:
        raise ValueError(f"prior_weight must be in [0, 1], got {prior_weight}")
    if prior_weight > 0 and prior is None:
        raise ValueError("prior_weight > 0 needs a prior probability (e.g. the historical conversion rate)")
    if prior is not None and not 0.0 <= prior <= 1.0:
        raise ValueError(f"prior must be a probability in [0, 1], got {prior}")
    if "{card}" not in template:
        raise ValueError("the zero-shot template must contain '{card}' where the lead card goes")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"opportunity_threshold must be in (0, 1), got {threshold}")
    if not (1.0 >= grades[0] >= grades[1] >= grades[2] >= 0.0):
        raise ValueError(f"grade_thresholds must be descending probabilities (A, B, C), got {grades}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
