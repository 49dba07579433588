"""The static encoder backend: distilled once from the installed MiniLM with model2vec (offline),
cached by source model, rebuilt when the source changes, same encode contract as TextEncoder,
and selected by LEADPILOT_SCORING__ENCODER_BACKEND=static."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring.encoder import TextEncoder, default_model_path
from scoring.encoder_cache import EmbeddingCache
from scoring.encoder_static import MARKER, StaticEncoder, static_dir

pytestmark = pytest.mark.slow

TEXTS = [
    "Please send pricing for the enterprise plan, budget approved",
    "Can you send us a quote for the enterprise plan? Budget is approved.",
    "I am a student, just browsing for a class project",
    "",
    "   ",
    None,
    "预算已经批准，希望下周安排产品演示。",
]


def _refuse(*_: Any) -> Any:
    raise AssertionError("the cached static model should have been used, not distilled again")


class CountingDistill:
    """Stands in for a second distillation in rebuild tests: returns the model built once per
    session (a real model2vec StaticModel) and counts how often a rebuild asked for one."""

    def __init__(self, model: Any) -> None:
        self.model, self.calls = model, 0

    def __call__(self, *_: Any) -> Any:
        self.calls += 1
        return self.model


@pytest.fixture
def cache_copy(tmp_path: Path, static_encoder_dir: Path) -> Path:
    target = tmp_path / "static-encoder"
    shutil.copytree(static_encoder_dir, target)
    return target


def test_given_the_installed_encoder_when_distilled_then_offline_files_and_marker_name_the_source(
    static_encoder_dir: Path, minilm_encoder: TextEncoder
) -> None:
    folder = static_dir(static_encoder_dir, minilm_encoder.model_id)
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert json.loads((folder / MARKER).read_text())["source_model"] == minilm_encoder.model_id
    assert [p.name for p in static_encoder_dir.iterdir()] == [folder.name]  # no temporary folder left


def test_given_texts_then_the_textencoder_contract_holds_and_meaning_is_kept(
    static_encoder_dir: Path, minilm_encoder: TextEncoder
) -> None:
    enc = StaticEncoder(cache_dir=static_encoder_dir, source=minilm_encoder, distill=_refuse)
    assert not enc.rebuilt and enc.model_id == f"static:{minilm_encoder.model_id}" != minilm_encoder.model_id
    out = enc.encode(TEXTS)
    assert out.shape == (len(TEXTS), enc.dim) and out.dtype == np.float32 and enc.dim == 256
    norms = np.linalg.norm(out, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 2, 6]], 1.0, atol=1e-5)
    assert np.all(norms[[3, 4, 5]] == 0)
    # the two pricing requests are nearer each other than either is to the student
    assert out[0] @ out[1] > max(out[0] @ out[2], out[1] @ out[2]) + 0.1
    # the same texts give the same rows whatever the batch
    np.testing.assert_array_equal(enc.encode([TEXTS[2]])[0], out[2])


def test_given_a_vector_cache_then_the_second_call_reads_it(static_encoder_dir: Path, minilm_encoder: TextEncoder,
                                                            tmp_path: Path) -> None:
    enc = StaticEncoder(cache_dir=static_encoder_dir, source=minilm_encoder, distill=_refuse,
                        cache=tmp_path / "emb.sqlite")
    first = enc.encode(TEXTS)
    assert enc.texts_encoded == 4  # four non-empty distinct texts
    again = enc.with_options(cache=EmbeddingCache(tmp_path / "emb.sqlite"))
    np.testing.assert_array_equal(again.encode(TEXTS), first)
    assert again.texts_encoded == 0


def test_given_a_marker_for_another_source_then_the_model_is_distilled_again(
    cache_copy: Path, minilm_encoder: TextEncoder
) -> None:
    folder = static_dir(cache_copy, minilm_encoder.model_id)
    built = StaticEncoder(cache_dir=cache_copy, source=minilm_encoder, distill=_refuse)
    (folder / MARKER).write_text(json.dumps({"source_model": "all-MiniLM-L6-v2@000000000000"}))
    distill = CountingDistill(built._static)
    rebuilt = StaticEncoder(cache_dir=cache_copy, source=minilm_encoder, distill=distill)
    assert distill.calls == 1 and rebuilt.rebuilt
    assert json.loads((folder / MARKER).read_text())["source_model"] == minilm_encoder.model_id
    # and now it is current again
    assert not StaticEncoder(cache_dir=cache_copy, source=minilm_encoder, distill=_refuse).rebuilt


def test_given_new_weights_in_the_source_model_then_another_static_model_is_built(
    cache_copy: Path, tmp_path: Path, static_encoder_dir: Path, minilm_encoder: TextEncoder
) -> None:
    # The same model in another directory with one more file: another fingerprint, so another source id.
    changed = tmp_path / "changed-model"
    shutil.copytree(default_model_path(), changed, symlinks=False,
                    copy_function=lambda src, dst: os.symlink(src, dst))
    (changed / "added_tokens_note.txt").write_text("a changed model directory")
    source = TextEncoder(str(changed))
    assert source.model_id != minilm_encoder.model_id
    distill = CountingDistill(StaticEncoder(cache_dir=static_encoder_dir, source=minilm_encoder,
                                            distill=_refuse)._static)
    enc = StaticEncoder(str(changed), cache_dir=cache_copy, source=source, distill=distill)
    assert distill.calls == 1 and enc.model_id == f"static:{source.model_id}"
    assert static_dir(cache_copy, source.model_id).is_dir() and static_dir(cache_copy, minilm_encoder.model_id).is_dir()


def test_given_the_static_backend_setting_then_the_deployment_uses_the_cached_static_model(
    tmp_path: Path, static_encoder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync.config.settings import Settings
    from sync.wiring.scorers import ModelScorers

    for key in list(os.environ):
        if key.upper().startswith("LEADPILOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    monkeypatch.setenv("LEADPILOT_STATE_DIR", str(tmp_path / "state"))
    assert Settings().scoring.encoder_backend == "transformer"  # the default stays the transformer
    monkeypatch.setenv("LEADPILOT_SCORING__ENCODER_BACKEND", "static")
    settings = Settings()
    shutil.copytree(static_encoder_dir, tmp_path / "state" / "static-encoder")  # distilled before
    monkeypatch.setattr("scoring.encoder_static.distill_model", _refuse)
    encoder = ModelScorers(settings, store=None).encoder()
    assert isinstance(encoder, StaticEncoder) and not encoder.rebuilt
    assert encoder.cache is not None and encoder.cache.path == tmp_path / "state" / "encoder-cache.sqlite"
    monkeypatch.setenv("LEADPILOT_SCORING__ENCODER_BACKEND", "statik")
    with pytest.raises(ValueError, match="static"):
        Settings()
