"""ONNX Runtime forward pass for ``TextEncoder(backend="onnx")`` (optional extra ``leadpilot[onnx]``).

The encoder's transformer is exported once to ONNX (fp32, dynamic batch and sequence axes;
``torch.onnx.export`` with the TorchScript exporter, which needs no extra package) into
``onnx_dir`` (default ``~/.cache/leadpilot/onnx``) under a file named after the model id, so
a changed weight file gets a new export. ONNX Runtime then runs it on the CPU with its
graph optimisations (attention and layer-norm fusion). Pooling and normalisation stay in
the encoder, identical for both backends. The same fp32 weights give vectors within
~1e-6 of PyTorch's (the benchmark and a test check cosine >= 0.9999); no quantisation:
naive int8 was measured at cosine 0.89.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEFAULT_ONNX_DIR = Path("~/.cache/leadpilot/onnx")


def onnx_available() -> bool:
    """True when the optional ``onnxruntime`` package is installed."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _file_name(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", model_id) + ".onnx"


def export(model: Any, path: Path, with_token_types: bool) -> Path:
    """Export ``model`` (a transformers encoder) to ``path`` unless it is already there."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])
    # a padded row in the example, so tracing cannot specialise on an all-ones attention mask
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    mask[1, 5:] = 0
    dummy = (ids, mask) + ((torch.zeros_like(ids),) if with_token_types else ())
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    # write to a temporary name first: a crash mid-export must not leave a truncated model
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape checks; the export is checked by tests
            torch.onnx.export(_Hidden(model).eval(), dummy, tmp, input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
                              dynamo=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


class OnnxForward:
    """``(input_ids, attention_mask) -> last hidden state`` through an ONNX Runtime session."""

    def __init__(self, model: Any, model_id: str, *, onnx_dir: str | Path | None = None,
                 with_token_types: bool = True, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeError("backend 'onnx' needs the optional onnxruntime package: "
                               "pip install 'leadpilot[onnx]' (or use backend 'torch')") from exc
        root = Path(onnx_dir).expanduser() if onnx_dir is not None else DEFAULT_ONNX_DIR.expanduser()
        self.path = export(model, root / _file_name(model_id), with_token_types)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feed = {"input_ids": input_ids.cpu().numpy().astype(np.int64),
                "attention_mask": attention_mask.cpu().numpy().astype(np.int64)}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        (hidden,) = self.session.run(["last_hidden_state"], feed)
        return torch.from_numpy(hidden)
