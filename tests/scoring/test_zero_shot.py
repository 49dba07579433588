"""Zero-shot cold start with a tiny random T5 saved to disk and loaded the way users load one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from scoring.types import Score
from scoring.zero_shot import DEFAULT_TEMPLATE, REASON, ZeroShotScorer, lead_card

CARDS = [
    "Title: Manager\nCompany: Acme\nMessage: we want pricing for our team next quarter",
    "Occupation: student\nMessage: just browsing",
    "Message: please call me",
    "Company: Acme software\nCountry: Germany\nSource: web\nMessage: quote budget demo",
    "(no details)",
]


def _hand_p_yes(model_dir: Path, card: str, yes: str, no: str) -> tuple[float, float]:
    """P(yes), P(no) from the first decoder step's logits, one prompt at a time (no padding)."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    enc = tok(DEFAULT_TEMPLATE.replace("{card}", card), return_tensors="pt")
    start = torch.tensor([[model.config.decoder_start_token_id]])
    with torch.no_grad():
        logits = model(**enc, decoder_input_ids=start).logits[0, 0]
    yes_id, no_id = tok.convert_tokens_to_ids([yes, no])
    ly, ln = float(logits[yes_id]), float(logits[no_id])
    z = math.exp(ly) + math.exp(ln)
    return math.exp(ly) / z, math.exp(ln) / z


def test_given_tiny_t5_when_probabilities_then_equal_softmax_of_first_step_yes_no_logits(tiny_t5_dir):
    scorer = ZeroShotScorer(str(tiny_t5_dir), batch_size=4)
    got = scorer.probabilities(CARDS)
    for card, p in zip(CARDS, got, strict=True):
        p_yes, p_no = _hand_p_yes(tiny_t5_dir, card, "yes", "no")
        assert p_yes + p_no == pytest.approx(1.0, abs=1e-12)
        assert p == pytest.approx(p_yes, abs=1e-5)
    assert got.std() > 1e-3, "random T5 should still tell these cards apart"


def test_given_yes_split_into_pieces_when_scoring_then_the_first_piece_is_used(tiny_t5_split_dir):
    scorer = ZeroShotScorer(str(tiny_t5_split_dir))
    tok = AutoTokenizer.from_pretrained(tiny_t5_split_dir)
    assert tok.tokenize("yes") == ["y", "##es"]
    assert (scorer.yes_id, scorer.no_id) == tuple(tok.convert_tokens_to_ids(["y", "n"]))
    p_yes, _ = _hand_p_yes(tiny_t5_split_dir, CARDS[0], "y", "n")
    assert scorer.probabilities(CARDS[:1])[0] == pytest.approx(p_yes, abs=1e-5)


def test_given_batch_sizes_when_probabilities_then_same_results(tiny_t5_dir):
    one = ZeroShotScorer(str(tiny_t5_dir), batch_size=1).probabilities(CARDS)
    many = ZeroShotScorer(str(tiny_t5_dir), batch_size=3).probabilities(CARDS)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_given_two_instances_when_scoring_same_rows_then_identical(tiny_t5_dir):
    a = ZeroShotScorer(str(tiny_t5_dir)).probabilities(CARDS)
    b = ZeroShotScorer(str(tiny_t5_dir)).probabilities(CARDS)
    assert a.tolist() == b.tolist()


def test_given_prior_when_blending_then_linear_in_probability(tiny_t5_dir):
    raw = ZeroShotScorer(str(tiny_t5_dir)).probabilities(CARDS)
    blended = ZeroShotScorer(str(tiny_t5_dir), prior=0.1, prior_weight=0.25).probabilities(CARDS)
    np.testing.assert_allclose(blended, 0.75 * raw + 0.25 * 0.1, atol=1e-12)


def test_given_rows_when_score_then_scores_follow_probability_and_thresholds(tiny_t5_dir):
    rows = [
        {"title": "Manager", "company": "Acme", "industry": None, "text": "we want pricing"},
        {"title": "Select", "company": "", "employees": float("nan"), "text": "just browsing"},
        {},
    ]
    probs = ZeroShotScorer(str(tiny_t5_dir)).probabilities([lead_card(r) for r in rows])
    threshold = float(np.median(probs))
    scorer = ZeroShotScorer(
        str(tiny_t5_dir), opportunity_threshold=threshold, grade_thresholds=(0.9, 0.6, 0.3)
    )
    scores = scorer.score(rows)
    assert [s.probability for s in scores] == pytest.approx(probs.tolist(), abs=1e-6)
    for s in scores:
        assert isinstance(s, Score)
        assert s.score == round(100 * s.probability)
        expected = (
            "A"
            if s.probability >= 0.9
            else "B"
            if s.probability >= 0.6
            else "C"
            if s.probability >= 0.3
            else "D"
        )
        assert s.grade == expected
        assert s.opportunity == (s.probability >= threshold)
        assert s.reasons.startswith(REASON) and len(s.reasons) <= 250
        assert s.model_version == f"zero-shot:{tiny_t5_dir.name}"
    assert sum(s.opportunity for s in scores) >= 1


def test_given_row_when_lead_card_then_missing_fields_dropped_and_text_last():
    row = {
        "title": "VP Sales",
        "company": " ",
        "source": "Select",
        "employees": 250.0,
        "text": "需要报价",
        "raw": {"x": 1},
    }
    assert lead_card(row) == "Title: VP Sales\nEmployees: 250\nMessage: 需要报价"
    assert lead_card({"title": None, "text": ""}) == "(no details)"


def test_given_no_inputs_when_probabilities_then_empty(tiny_t5_dir):
    assert ZeroShotScorer(str(tiny_t5_dir)).probabilities([]).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": ""}, "LEADPILOT_SCORING__ZERO_SHOT_MODEL"),
        ({"model": "/nonexistent/flan-t5"}, "LEADPILOT_SCORING__ZERO_SHOT_MODEL"),
        ({"prior_weight": 0.5}, "needs a prior"),
        ({"prior": 1.5, "prior_weight": 0.5}, "prior must be"),
        ({"template": "Is this an opportunity?"}, "{card}"),
        ({"opportunity_threshold": 1.0}, "opportunity_threshold"),
        ({"grade_thresholds": (0.2, 0.5, 0.7)}, "descending"),
        ({"max_length": 20}, "no room"),
    ],
)
def test_given_bad_configuration_when_building_then_clear_error(tiny_t5_dir, kwargs, message):
    kwargs = {"model": str(tiny_t5_dir), **kwargs}
    with pytest.raises(
        (ValueError, FileNotFoundError), match=message.replace("{", r"\{").replace("}", r"\}")
    ):
        ZeroShotScorer(**kwargs)


def test_given_huge_card_when_prompting_then_instruction_kept_and_prompt_fits(tiny_t5_dir):
    scorer = ZeroShotScorer(str(tiny_t5_dir), max_length=64)
    card = "Message: " + "we want pricing for our team " * 5_000
    (prompt,) = scorer.prompts([card])
    ids = scorer._tokenizer(prompt)["input_ids"]
    assert len(ids) <= 64
    assert prompt.endswith("Answer yes or no.")
    assert scorer.prompts(["Message: please call me"]) == [
        DEFAULT_TEMPLATE.replace("{card}", "Message: please call me")
    ]
    assert 0.0 < scorer.probabilities([card])[0] < 1.0
