"""LEADPILOT_SCORING__ENCODER_BACKEND names the default path "transformer" (issue 19); the old
name "torch" still works, with a warning saying what to set instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config.loading import ConfigError, load_checked

VAR = "LEADPILOT_SCORING__ENCODER_BACKEND"


def test_given_no_backend_when_loading_then_the_transformer_path_and_no_warning(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    loaded = load_checked()
    assert loaded.settings.scoring.encoder_backend == "transformer"
    assert not [w for w in loaded.warnings if VAR in w]


@pytest.mark.parametrize("value", ["transformer", "static", "onnx"])
def test_given_a_backend_name_when_loading_then_it_is_used_as_given(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    monkeypatch.setenv(VAR, value)
    loaded = load_checked()
    assert loaded.settings.scoring.encoder_backend == value
    assert not [w for w in loaded.warnings if VAR in w]


def test_given_the_deprecated_torch_name_when_loading_then_transformer_with_a_warning(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    (clean_env / ".env").write_text(f"{VAR}=torch\n", encoding="utf-8")
    loaded = load_checked()
    assert loaded.settings.scoring.encoder_backend == "transformer"
    assert loaded.warnings == [f"warning: {VAR}=torch (.env) is deprecated and means transformer; "
                               f"set {VAR}=transformer"]


def test_given_a_misspelt_backend_when_loading_then_the_error_names_the_variable_and_the_choices(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    monkeypatch.setenv(VAR, "transfomer")
    with pytest.raises(ConfigError) as info:
        load_checked()
    [line] = [p for p in info.value.problems if VAR in p]
    assert "'transformer'" in line and "'static'" in line
