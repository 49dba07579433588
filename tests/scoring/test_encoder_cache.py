"""EmbeddingCache on its own, and TextEncoder's use of it (hits counted by forward passes)."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.encoder_cache import EmbeddingCache, text_key

TEXTS = ["Need pricing for 50 seats", "just looking", "请给我们报价", "Budget approved, demo next week"]


def _vectors(n: int, dim: int = 8, seed: int = 0) -> dict[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {text_key(f"text {i}"): rng.standard_normal(dim).astype(np.float32) for i in range(n)}


def test_given_stored_vectors_when_reopening_file_then_found_exactly(tmp_path):
    items = _vectors(2_000)  # more than one SQL chunk of keys
    EmbeddingCache(tmp_path / "emb.sqlite").put_many("m1", items)
    again = EmbeddingCache(tmp_path / "emb.sqlite")
    keys = list(items)
    found = again.get_many("m1", [*keys, text_key("never stored")])
    assert len(found) == 2_000 and len(again) == 2_000
    for key in keys:
        np.testing.assert_array_equal(found[key], items[key])


def test_given_other_namespace_when_looking_up_then_miss(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    items = _vectors(3)
    cache.put_many("model-a;max_length=256", items)
    assert cache.get_many("model-a;max_length=128", list(items)) == {}


def test_given_memory_limit_when_storing_more_then_oldest_evicted_from_memory_only(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite", memory_items=2)
    items = _vectors(3)
    cache.put_many("m", items)
    assert len(cache._memory) == 2
    assert len(cache.get_many("m", list(items))) == 3  # the evicted one comes back from disk


def test_given_no_path_when_storing_then_memory_only():
    cache = EmbeddingCache()
    cache.put_many("m", _vectors(4))
    assert len(cache) == 4 and cache.path is None


def test_given_corrupt_file_when_opening_then_clear_error(tmp_path):
    bad = tmp_path / "emb.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="only a cache"):
        EmbeddingCache(bad)


def test_given_cache_when_encoding_again_then_no_forward_pass(minilm_encoder, tmp_path):
    enc = minilm_encoder.with_options(cache=EmbeddingCache(tmp_path / "emb.sqlite"))
    first = enc.encode(TEXTS)
    calls, encoded = enc.forward_calls, enc.texts_encoded
    assert encoded == len(TEXTS) and calls >= 1
    second = enc.encode(TEXTS)
    assert (enc.forward_calls, enc.texts_encoded) == (calls, encoded)
    np.testing.assert_array_equal(first, second)
    enc.encode([*TEXTS, "a brand new message"])
    assert enc.texts_encoded == encoded + 1


def test_given_persisted_cache_when_new_encoder_then_nothing_reencoded(minilm_encoder, tmp_path):
    path = tmp_path / "state" / "embeddings.sqlite"
    first = minilm_encoder.with_options(cache=path).encode(TEXTS)
    restarted = minilm_encoder.with_options(cache=path)  # fresh memory layer, same file
    again = restarted.encode(TEXTS)
    assert restarted.forward_calls == 0 and restarted.texts_encoded == 0
    np.testing.assert_array_equal(first, again)


def test_given_cached_vectors_when_encoding_with_other_max_length_then_reencoded(minilm_encoder, tmp_path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    minilm_encoder.with_options(cache=cache).encode(TEXTS)
    shorter = minilm_encoder.with_options(cache=cache, max_length=16)
    assert "max_length=16" in shorter.cache_namespace
    shorter.encode(TEXTS)
    assert shorter.texts_encoded == len(TEXTS)
