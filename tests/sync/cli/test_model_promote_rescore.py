"""The admin's day one through the real command line, against the sandbox over HTTPS:
``sync --once`` on a new org trains first and writes real scores; ``train`` and
``model promote`` rescore the open leads and write only those whose values change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox.server import SandboxServer
from sync.cli import app

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _env(info: dict[str, Any], state: Path) -> dict[str, str]:
    return {"LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
            "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"],
            "LEADPILOT_STATE_DIR": str(state), "LEADPILOT_METRICS_PORT": "0",
            "LEADPILOT_ROUTING__FILE": str(state / "no-routing.toml"), "LEADPILOT_LOG_LEVEL": "WARNING"}


def _shown(srv: SandboxServer) -> dict[str, tuple[Any, ...]]:
    """Scored leads' leadpilot values as stored in the CRM: score, grade, reasons, flag, model version."""
    out = {}
    for r in srv.store.all("Lead"):
        low = {k.lower(): v for k, v in r.items()}
        if low.get("leadpilot_score") is not None:
            out[r["Id"]] = (low.get("leadpilot_score"), low.get("leadpilot_grade"), low.get("leadpilot_reasons"),
                            low.get("leadpilot_opportunity"), low.get("leadpilot_model_version"))
    return out


def test_given_a_new_org_when_the_admin_syncs_trains_and_promotes_then_scores_follow_the_champion(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()
    with SandboxServer(seed=3, leads=450, scenario="skilled") as srv:
        env = _env(srv.info, tmp_path / "state")

        def cli(*args: str) -> Any:
            result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return result

        cli("init-crm")
        first = json.loads(cli("sync", "--once", "--json").stdout)
        assert first["written"] > 0 and first["error"] is None
        day_one = _shown(srv)
        assert {v[4] for v in day_one.values()} == {"v0001"}  # trained before the first write
        assert not any(str(v[2]).startswith("Base rate") for v in day_one.values())

        again = json.loads(cli("train", "--json").stdout)  # a challenger; promoted only if not worse
        assert again["version"] == "v0002" and again["error"] is None
        if again["champion"] == "v0002":  # promoted: the open leads were rescored with it
            assert again["rescore"]["written"] == again["rescore"]["changed"]
        before = _shown(srv)

        out = cli("model", "promote", "v0001").stdout
        after = _shown(srv)
        changed = {lid for lid in after if after[lid][:4] != before[lid][:4]}
        rewritten = {lid for lid in after if after[lid] != before[lid]}  # scored_at aside
        assert "v0001 is the champion" in out
        assert f"open leads rescored with v0001: {len(changed)} changed, {len(changed)} written" in out
        assert rewritten == changed  # nothing written where score, grade and reasons stay
        assert all(after[lid][4] == "v0001" for lid in changed)

        quiet = cli("model", "promote", "v0001").stdout
        assert "open leads rescored with v0001: 0 changed, 0 written" in quiet and _shown(srv) == after
        skipped = cli("model", "promote", "v0002", "--no-rescore").stdout
        assert "rescored" not in skipped and _shown(srv) == after
