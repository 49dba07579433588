"""Fixtures for scoring tests (shared by the scoring engineers: add yours, keep the others).

The bundled MiniLM encoder (~90 MB) is loaded once per session. The zero-shot tests use a
tiny randomly initialised T5 with a small offline word-level tokenizer, saved to a temp
directory and loaded back through the same code path users take.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from scoring.encoder import TextEncoder
from scoring.zero_shot import DEFAULT_TEMPLATE

_WORDS = (
    "yes no lead sales opportunity budget need buying intent answer real a is with this or the "
    "title company industry country source employees message we want pricing demo for our team "
    "student just browsing call me please quote next quarter manager acme software germany web : ( )"
)


@pytest.fixture(scope="session")
def minilm_encoder() -> TextEncoder:
    """The default encoder (bundled all-MiniLM-L6-v2), no cache. Use ``with_options`` for a cache."""
    return TextEncoder(device="cpu")


def build_tiny_t5(path: Path, *, split_answers: bool = False, seed: int = 0) -> Path:
    """Save a tiny random T5 + tokenizer to ``path``; ``split_answers`` makes "yes"/"no" multi-piece."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    specials = ["<pad>", "</s>", "<unk>"]
    words = sorted(set(re.findall(r"\w+|[^\w\s]", (DEFAULT_TEMPLATE + " " + _WORDS).lower())))
    if split_answers:
        # WordPiece: "yes" -> "y", "##es"; "no" -> "n", "##o" (whole words left out of the vocab)
        words = [w for w in words if w not in {"yes", "no"}] + ["y", "##es", "n", "##o"]
        vocab = {tok: i for i, tok in enumerate(specials + words)}
        model = models.WordPiece(vocab=vocab, unk_token="<unk>")
    else:
        vocab = {tok: i for i, tok in enumerate(specials + words)}
        model = models.WordLevel(vocab=vocab, unk_token="<unk>")
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    config = T5Config(
        vocab_size=len(vocab),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        initializer_factor=2.0,  # wider random logits, so P(yes) varies between leads
    )
    torch.manual_seed(seed)
    T5ForConditionalGeneration(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny T5 whose tokenizer has whole-word "yes" and "no" tokens."""
    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def tiny_t5_split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny T5 whose tokenizer splits "yes"/"no" into several pieces."""
    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5-split"), split_answers=True)


# ---------------------------------------------------------------- tabular scoring (features/model/registry)
@pytest.fixture(scope="session")
def lead_spec():
    """The spec of ``synthetic_leads``."""
    from scoring.features import FeatureSpec

    return FeatureSpec(numeric=("visits",), categorical=("source", "occupation"), text=("text",),
                       labels={"source": "Source", "occupation": "Occupation", "visits": "Visits",
                               "text": "Message"}, min_count=5)


@pytest.fixture(scope="session")
def trained(lead_spec):
    """(scorer, report, rows, labels) trained once per session on 400 synthetic leads (TF-IDF text)."""
    from scoring_data import synthetic_leads

    from scoring.ensemble import ModelConfig
    from scoring.training import train_scorer

    rows, labels = synthetic_leads(400, seed=0)
    scorer, report = train_scorer(rows, labels, lead_spec, seed=0, config=ModelConfig(folds=3))
    return scorer, report, rows, labels


@pytest.fixture(scope="session")
def static_encoder_dir(tmp_path_factory: pytest.TempPathFactory, minilm_encoder: TextEncoder) -> Path:
    """A cache folder holding the static encoder distilled (for real, with model2vec) from the
    bundled MiniLM, built once per session: distilling its 30k-token vocabulary takes a minute or
    more on 2 cores. Tests copy it before changing anything in it."""
    from scoring.encoder_static import StaticEncoder

    cache_dir = tmp_path_factory.mktemp("static-encoder")
    encoder = StaticEncoder(cache_dir=cache_dir, source=minilm_encoder)
    assert encoder.rebuilt  # an empty folder: distilled now
    return cache_dir
