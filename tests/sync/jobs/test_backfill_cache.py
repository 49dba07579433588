"""A backfill reads past the embedding cache: a million old leads are read once, and their
vectors would only grow the cache file (GBs) and the backfill's memory."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace
from typing import Any

from scoring.encoder import TextEncoder
from sync.jobs.backfill import bulk_scorer


def _rows(path: Any) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])


def test_the_backfills_encoder_skips_the_cache_and_the_daemons_keeps_it(tmp_path):
    cache = tmp_path / "encoder-cache.sqlite"
    encoder = TextEncoder(device="cpu", cache=cache)
    scorer = SimpleNamespace(encoder=encoder, version="v0001")  # what bulk_scorer reads of a LeadScorer

    bulk = bulk_scorer(scorer)
    vectors = bulk.encoder.encode(["we need a quote for 40 seats", "just browsing"])

    assert vectors.shape == (2, encoder.dim) and abs(float(vectors[0] @ vectors[0]) - 1) < 1e-4
    assert _rows(cache) == 0
    assert bulk.encoder.model_id == encoder.model_id and bulk.version == "v0001"
    assert scorer.encoder is encoder and encoder.cache is not None  # the daemon's scorer is untouched
    encoder.encode(["we need a quote for 40 seats"])
    assert _rows(cache) == 1


def test_a_scorer_without_a_cached_encoder_is_used_as_it_is():
    plain = SimpleNamespace(encoder=None)
    assert bulk_scorer(plain) is plain
