"""Model registry: champion/challenger on the same validation data, promote, rollback, versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from scoring.ensemble import ModelConfig
from scoring.registry import ModelLoadError, ModelRegistry, ModelVersionWarning
from scoring.training import train_scorer

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def _noise_model(trained, lead_spec):
    """A model trained on shuffled labels: worse on any validation data."""
    _, _, rows, labels = trained
    shuffled = np.random.default_rng(5).permutation(labels)
    return train_scorer(rows, shuffled, lead_spec, seed=0, refit=False, config=ModelConfig(folds=2))


def test_given_an_empty_registry_when_challenged_then_the_first_model_is_champion(registry, trained) -> None:
    scorer, report, rows, _ = trained
    decision = registry.challenge(scorer, report, now=NOW)
    assert (decision.version, decision.promoted) == ("v0001", True)
    assert registry.champion_version() == "v0001"
    meta = registry.metadata("v0001")
    assert meta["created_at"] == NOW.isoformat() and meta["features"]["categorical"] == ["source", "occupation"]
    assert meta["metrics"]["roc_auc"] == pytest.approx(report.metrics["roc_auc"])
    assert {"python", "scikit-learn", "numpy"} <= set(meta["libraries"])
    loaded = registry.load()
    assert loaded.version == "v0001"
    assert loaded.predict_proba(rows[:20]) == pytest.approx(scorer.predict_proba(rows[:20]))


def test_given_a_worse_challenger_when_challenged_then_champion_stays(registry, trained, lead_spec) -> None:
    scorer, report, _, _ = trained
    registry.challenge(scorer, report, now=NOW)
    noise, noise_report = _noise_model(trained, lead_spec)
    decision = registry.challenge(noise, noise_report, now=NOW)
    assert not decision.promoted and decision.version == "v0002"
    assert registry.champion_version() == "v0001"
    assert "kept v0001" in decision.reason and decision.champion is not None
    # the champion was scored on the challenger's own validation leads
    assert f"same {noise_report.n_validation} validation leads" in decision.reason


def test_given_promotions_when_rolled_back_then_the_previous_champion_returns(registry, trained, lead_spec) -> None:
    scorer, report, _, _ = trained
    registry.challenge(scorer, report, now=NOW)
    noise, noise_report = _noise_model(trained, lead_spec)
    registry.challenge(noise, noise_report, now=NOW)
    registry.promote("v0002")
    assert registry.champion_version() == "v0002"
    assert [e["champion"] for e in registry.list()] == [False, True]
    assert registry.rollback() == "v0001" and registry.champion_version() == "v0001"
    with pytest.raises(ValueError, match="nothing to roll back"):
        registry.rollback()
    with pytest.raises(KeyError, match="no model version 'v0009'.*v0001, v0002"):
        registry.promote("v0009")


def test_given_a_model_from_other_library_versions_when_loaded_then_it_says_so(registry, trained) -> None:
    scorer, report, _, _ = trained
    version = registry.register(scorer, report, now=NOW)
    meta_file = registry.path(version) / "meta.json"
    meta = json.loads(meta_file.read_text())
    running = meta["libraries"]["scikit-learn"]
    meta["libraries"]["scikit-learn"] = "0.99.0"
    meta_file.write_text(json.dumps(meta))
    with pytest.warns(ModelVersionWarning, match=rf"scikit-learn 0.99.0 \(running {running}\).*leadpilot train"):
        registry.load(version)


def test_given_an_unreadable_model_when_loaded_then_a_clear_error_names_the_versions(registry, trained) -> None:
    scorer, report, _, _ = trained
    version = registry.register(scorer, report, now=NOW)
    (registry.path(version) / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match=r"v0001 cannot be loaded.*made with .*scikit-learn .*leadpilot train"):
        registry.load(version)
    with pytest.raises(ModelLoadError, match="no champion"):
        registry.load()


def test_given_a_text_model_when_registered_and_loaded_then_it_needs_its_own_encoder(
    registry, lead_spec, minilm_encoder, tiny_t5_dir
) -> None:
    from scoring_data import synthetic_leads

    from scoring.encoder import TextEncoder

    rows, labels = synthetic_leads(120, seed=3)
    scorer, report = train_scorer(rows, labels, lead_spec, encoder=minilm_encoder, seed=0, refit=False,
                                  config=ModelConfig(folds=2, blend_weights=(0.0,)))
    assert scorer.needs_encoder and registry.challenge(scorer, report, now=NOW).promoted
    loaded = registry.load()
    with pytest.raises(ValueError, match="through encoder"):
        loaded.score(rows[:3])
    loaded = registry.load(encoder=minilm_encoder)
    assert loaded.predict_proba(rows[:5]) == pytest.approx(scorer.predict_proba(rows[:5]))
    other = TextEncoder(str(tiny_t5_dir), device="cpu")
    with pytest.raises(ValueError, match="trained with text encoder .* but was given"):
        registry.load(encoder=other)
