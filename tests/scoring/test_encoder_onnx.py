"""``TextEncoder(backend="onnx")``: the same vectors as PyTorch, its own cache namespace, one export.

Skipped where the optional ``onnx`` extra (onnxruntime + onnx) is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from scoring.encoder import TextEncoder  # noqa: E402

TEXTS = ["Need pricing for 40 seats and a demo next week", "", "hi", "预算已经批准，希望下周安排产品演示。",
         "Long note. " * 120, None]


@pytest.fixture(scope="module")
def onnx_encoder(tmp_path_factory) -> TextEncoder:
    return TextEncoder(device="cpu", backend="onnx", onnx_dir=tmp_path_factory.mktemp("onnx-export"))


def test_given_onnx_backend_when_encoding_then_vectors_match_pytorch(onnx_encoder, minilm_encoder) -> None:
    a, b = minilm_encoder.encode(TEXTS), onnx_encoder.encode(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), 384)
    assert not b[1].any() and not b[5].any()  # empty and missing text stay the zero vector
    full = [0, 2, 3, 4]
    assert np.min(np.sum(a[full] * b[full], axis=1)) > 0.9999
    # padded batches (mixed lengths) give the same vector as the text alone
    assert onnx_encoder.with_options(batch_size=1).encode([TEXTS[2]])[0] == pytest.approx(b[2], abs=1e-5)


def test_given_onnx_backend_when_cached_then_own_namespace_and_same_model_id(onnx_encoder, minilm_encoder) -> None:
    assert onnx_encoder.model_id == minilm_encoder.model_id  # a model trained on one scores with the other
    assert onnx_encoder.cache_namespace == minilm_encoder.cache_namespace + ";backend=onnx"


def test_given_an_exported_model_when_loading_again_then_the_export_is_reused(onnx_encoder) -> None:
    path = onnx_encoder._onnx.path
    stamp = path.stat().st_mtime_ns
    again = TextEncoder(device="cpu", backend="onnx", onnx_dir=path.parent)
    assert again._onnx.path == path and path.stat().st_mtime_ns == stamp


def test_given_an_unknown_backend_when_building_then_clear_error() -> None:
    with pytest.raises(ValueError, match="backend must be 'transformer' or 'onnx'"):
        TextEncoder(backend="tensorrt")
