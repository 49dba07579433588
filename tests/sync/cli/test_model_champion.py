"""One champion: ``leadpilot model promote | rollback`` change the registry, and ``status``,
``model list`` and the report show what the registry says — even where the store's
trained-model log recorded another champion at training time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.config.settings import Settings
from sync.ops.status import report_data
from sync.store import open_store


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = ["visits,source,converted"]
    for _ in range(240):
        visits = int(rng.integers(0, 20))
        source = str(rng.choice(["web", "event", "referral"]))
        p = 0.15 + 0.03 * visits + (0.2 if source == "referral" else 0.0)
        lines.append(f"{visits},{source},{int(rng.random() < min(p, 0.95))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)  # no stray .env
    env = {"LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": "not-used-offline",
           "LEADPILOT_STATE_DIR": str(tmp_path / "state"), "LEADPILOT_ROUTING__FILE": str(tmp_path / "none.toml"),
           "LEADPILOT_METRICS_PORT": "0", "LEADPILOT_LOG_LEVEL": "WARNING"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    return run


def _status_model(cli: Any) -> dict[str, Any]:
    return dict(json.loads(cli("status", "--offline", "--json").stdout)["model"])


def test_given_two_models_when_promoted_or_rolled_back_then_status_reports_that_champion(cli: Any, tmp_path: Path) -> None:
    data = _csv(tmp_path / "leads.csv")
    assert _status_model(cli) == {"version": None, "note": "cold start: no trained model yet"}
    cli("train", "--csv", str(data), "--label", "converted", "--seed", "0")
    cli("train", "--csv", str(data), "--label", "converted", "--seed", "1")
    settings = Settings()
    store = open_store(settings)
    try:
        # the daemon's log says v0002 was champion when it was trained
        store.add_model("v0002", str(settings.state_dir / "models" / "v0002"), {"roc_auc": 0.61, "n_train": 180},
                        datetime(2026, 3, 1, tzinfo=UTC), status="champion")

        assert "v0001 is the champion" in cli("model", "promote", "v0001", "--no-rescore").stdout
        model = _status_model(cli)
        assert model["version"] == "v0001"  # the registry's champion, not the log's
        assert 0.0 <= model["metrics"]["roc_auc"] <= 1.0  # a model the daemon did not train: the registry's metrics
        assert "* v0001" in cli("model", "list").stdout
        assert report_data(settings, store).summary["model"] == "v0001"

        cli("model", "promote", "v0002", "--no-rescore")
        assert _status_model(cli) == {"version": "v0002", "metrics": {"roc_auc": 0.61, "n_train": 180}}  # as logged

        back = cli("model", "rollback", "--no-rescore").stdout
        assert "rolled back: v0001 is the champion" in back
        assert _status_model(cli)["version"] == "v0001"
        assert report_data(settings, store).summary["model"] == "v0001"
    finally:
        store.close()
