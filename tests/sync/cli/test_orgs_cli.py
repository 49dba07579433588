"""``--org NAME`` / ``--all`` on status, check and report: each org from its own file and its own store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.config.orgs import org_settings
from sync.store import Decision, open_store

HUBSPOT = "LEADPILOT_CRM=hubspot\nLEADPILOT_HUBSPOT__ACCESS_TOKEN=pat-na1-secret\n"
SALESFORCE = ("LEADPILOT_CRM=salesforce\nLEADPILOT_SALESFORCE__AUTH__KIND=password\n"
              "LEADPILOT_SALESFORCE__AUTH__USERNAME=ops@acme.example\nLEADPILOT_SALESFORCE__AUTH__PASSWORD=pw\n"
              "LEADPILOT_SALESFORCE__AUTH__SECURITY_TOKEN=tok\n")


@pytest.fixture
def orgs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.upper().startswith("LEADPILOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "orgs"
    directory.mkdir()
    (directory / "acme.env").write_text(SALESFORCE, encoding="utf-8")
    (directory / "globex.env").write_text(HUBSPOT, encoding="utf-8")
    monkeypatch.setenv("LEADPILOT_ORGS_DIR", str(directory))
    monkeypatch.setenv("LEADPILOT_METRICS_PORT", "0")
    return directory


def test_given_two_orgs_when_status_all_then_each_org_shows_its_own_store(orgs: Path) -> None:
    from datetime import UTC, datetime

    store = open_store(org_settings("acme"))
    store.record_decision(Decision(lead_id="L1", rep_id="r1", policy_name="contextual", policy_version=1,
                                   propensity=0.5, decided_at=datetime(2026, 1, 5, tzinfo=UTC),
                                   considered={"r1": None}, context={}))
    store.close()
    result = CliRunner().invoke(app, ["status", "--all", "--offline", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["orgs"]
    assert sorted(data) == ["acme", "globex"]
    assert (data["acme"]["org"], data["acme"]["crm"], data["globex"]["crm"]) == ("acme", "salesforce", "hubspot")
    assert data["acme"]["leads"] != data["globex"]["leads"]  # acme's decision is acme's alone
    one = CliRunner().invoke(app, ["status", "--org", "globex", "--offline", "--json"])
    assert one.exit_code == 0 and json.loads(one.stdout)["org"] == "globex"
    assert "pat-na1-secret" not in result.output + one.output


def test_given_two_orgs_when_status_without_org_then_it_asks_which(orgs: Path) -> None:
    result = CliRunner().invoke(app, ["status", "--offline"])
    assert result.exit_code == 2
    assert "several orgs (acme, globex): name one with --org NAME, or give --all" in result.output


def test_given_two_orgs_when_check_all_offline_then_each_org_is_checked(orgs: Path) -> None:
    result = CliRunner().invoke(app, ["check", "--all", "--offline"])
    assert result.exit_code == 0, result.output
    assert "org acme:" in result.output and "org globex:" in result.output
    assert "settings: org=globex crm=hubspot" in result.output


def test_given_a_bad_org_file_when_check_all_then_that_file_is_named_and_exit_2(orgs: Path) -> None:
    (orgs / "globex.env").write_text(HUBSPOT + "LEADPILOT_DRY_RUN=maybe\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--all", "--offline"])
    assert result.exit_code == 2
    assert f"{orgs / 'globex.env'}: LEADPILOT_DRY_RUN" in result.output
    unknown = CliRunner().invoke(app, ["check", "--org", "initech", "--offline"])
    assert unknown.exit_code == 2 and "unknown org; the orgs in" in unknown.output and "acme, globex" in unknown.output



@pytest.mark.parametrize("command", [["sync", "--once"], ["rewards", "--once"], ["run"]])
def test_given_two_orgs_when_a_job_command_names_no_known_org_then_it_says_which_there_are(
        orgs: Path, command: list[str]) -> None:
    unknown = CliRunner().invoke(app, [*command, "--org", "initech"])
    assert unknown.exit_code == 2 and "--org initech: unknown org; the orgs in" in unknown.output
    unnamed = CliRunner().invoke(app, command)
    assert unnamed.exit_code == 2 and "several orgs (acme, globex): name one with --org NAME" in unnamed.output
