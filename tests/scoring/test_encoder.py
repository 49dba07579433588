"""TextEncoder with the bundled all-MiniLM-L6-v2: pooling, normalisation, ordering, edge texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from scoring.encoder import TextEncoder, default_model_path, dir_fingerprint, mean_pool, plan_batches

SHORT = "Call me"
LONG = (
    "We are a 250-person logistics company evaluating CRM platforms for next quarter. "
    "Budget is approved and the operations director signs off; please send pricing and a demo slot."
)
MIXED = [
    LONG,
    "hi",
    "Interested in the enterprise plan, need SSO and an SLA",
    "我们公司正在评估客户管理系统，预算已经批准，希望下周安排演示。",
    SHORT,
    "Student, just browsing the course catalogue for now " * 6,
]


def test_given_two_texts_when_encoding_then_equal_hand_mean_pooling(minilm_encoder):
    path = default_model_path()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    enc = tok([SHORT, LONG], padding=True, return_tensors="pt")
    assert enc["attention_mask"][0].sum() < enc["attention_mask"][1].sum()  # padding is exercised
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state.numpy()
    expected = []
    for row, mask in zip(hidden, enc["attention_mask"].numpy(), strict=True):
        vec = row[mask.astype(bool)].mean(axis=0)
        expected.append(vec / np.linalg.norm(vec))
    got = minilm_encoder.encode([SHORT, LONG])
    assert got.dtype == np.float32 and got.shape == (2, 384)
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-5)


def test_given_mask_when_mean_pool_then_padding_ignored():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_given_texts_when_encoding_then_unit_norm_and_order_restored(minilm_encoder):
    together = minilm_encoder.encode(MIXED)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([minilm_encoder.encode([t])[0] for t in MIXED])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_given_batch_sizes_when_encoding_then_same_vectors(minilm_encoder):
    small = minilm_encoder.with_options(batch_size=1).encode(MIXED)
    big = minilm_encoder.with_options(batch_size=64).encode(MIXED)
    np.testing.assert_allclose(small, big, atol=1e-5)


def test_given_missing_text_when_encoding_then_zero_rows_and_no_forward(minilm_encoder):
    enc = minilm_encoder.with_options()
    out = enc.encode([None, "", "   \n", "budget approved"])  # type: ignore[list-item]
    assert np.all(out[:3] == 0.0)
    assert np.linalg.norm(out[3]) == pytest.approx(1.0, abs=1e-5)
    assert enc.encode([]).shape == (0, 384)
    assert enc.encode([None, ""]).shape == (2, 384)  # type: ignore[list-item]
    assert enc.texts_encoded == 1


def test_given_chinese_text_when_encoding_then_distinct_unit_vectors(minilm_encoder):
    a, b, c = minilm_encoder.encode(["我们需要报价和演示", "我们需要报价", "just browsing"])
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ b) > float(a @ c)  # shares characters with b, nothing with c


def test_given_huge_text_when_encoding_then_truncated_like_its_prefix(minilm_encoder):
    huge = "The customer wants a quote for 40 seats and a demo. " * 200_000  # ~10 MB
    prefix = huge[:5_000]  # already far beyond 256 tokens
    out = minilm_encoder.encode([huge, prefix])
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


def test_given_repeated_texts_in_one_call_when_encoding_then_each_unique_text_encoded_once(minilm_encoder):
    enc = minilm_encoder.with_options()
    out = enc.encode(["a", "b", "a", "a"])
    assert enc.texts_encoded == 2
    np.testing.assert_array_equal(out[0], out[2])


def test_given_bundled_model_when_loading_twice_then_same_stable_model_id(minilm_encoder):
    assert minilm_encoder.model_id == f"all-MiniLM-L6-v2@{dir_fingerprint(default_model_path())}"
    assert "max_length=256" in minilm_encoder.cache_namespace
    assert minilm_encoder.dim == 384


def test_given_model_dir_when_a_weight_file_changes_then_fingerprint_changes(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    (tmp_path / "README.md").write_text("docs")
    before = dir_fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("other docs")
    assert dir_fingerprint(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * 64)
    assert dir_fingerprint(tmp_path) != before


@pytest.mark.parametrize("model", ["/nonexistent/encoder", "./no-such-dir/model", "~/nowhere/x/y"])
def test_given_missing_model_path_when_loading_then_error_names_the_setting(model):
    with pytest.raises(FileNotFoundError, match="LEADPILOT_SCORING__ENCODER_MODEL"):
        TextEncoder(model)


def test_given_dir_without_model_when_loading_then_error_names_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="LEADPILOT_SCORING__ENCODER_MODEL"):
        TextEncoder(str(tmp_path))


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"max_length": 1}, "max_length"), ({"batch_size": 0}, "batch_size")]
)
def test_given_bad_sizes_when_building_then_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TextEncoder(**kwargs)


def test_given_mixed_lengths_when_planning_then_longest_first_and_padding_bounded():
    lengths = [10, 200, 12, 190, 11, 100, 9]
    assert plan_batches(lengths, batch_size=2) == [[1, 3], [5], [2, 4], [0, 6]]
    assert plan_batches(lengths, batch_size=64, min_fill=0.0) == [[1, 3, 5, 2, 4, 0, 6]]
    assert plan_batches([], batch_size=4) == []


def test_given_the_deprecated_torch_backend_name_when_building_then_the_transformer_path_same_cache_key(
    minilm_encoder,
):
    old = TextEncoder(device="cpu", backend="torch")
    assert old.backend == minilm_encoder.backend == "transformer"
    assert old.cache_namespace == minilm_encoder.cache_namespace  # vectors cached before the rename still hit
    np.testing.assert_array_equal(old.encode(["budget approved"]), minilm_encoder.encode(["budget approved"]))
