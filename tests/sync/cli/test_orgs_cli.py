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


# Every command that reads one org's settings or state takes --org NAME: with two orgs configured it
# names the orgs when given none or an unknown one, and works on the org named.
ONE_ORG_COMMANDS = [
    ["explain", "L1", "--offline"],
    ["evaluate-policy", "--policy", "round_robin"],
    ["init-crm", "--dry-run"],
    ["train"],
    ["model", "list"],
    ["model", "promote", "v0001", "--no-rescore"],
    ["model", "rollback", "--no-rescore"],
    ["backfill"],
]


@pytest.mark.parametrize("command", ONE_ORG_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_given_two_orgs_when_a_one_org_command_names_none_or_an_unknown_org_then_it_names_the_orgs(
        orgs: Path, command: list[str]) -> None:
    unknown = CliRunner().invoke(app, [*command, "--org", "initech"])
    assert unknown.exit_code == 2, unknown.output
    assert "--org initech: unknown org; the orgs in" in unknown.output and "acme, globex" in unknown.output
    unnamed = CliRunner().invoke(app, command)
    assert unnamed.exit_code == 2, unnamed.output
    assert "several orgs (acme, globex): name one with --org NAME" in unnamed.output


def _decide(org: str, lead_id: str, *, won: bool | None = None) -> None:
    from datetime import UTC, datetime

    store = open_store(org_settings(org))
    store.record_decision(Decision(lead_id=lead_id, rep_id="r1", policy_name="round_robin", policy_version=1,
                                   propensity=0.5, decided_at=datetime(2026, 1, 5, tzinfo=UTC),
                                   considered={"r1": None}, context={}))
    if won is not None:
        store.apply_outcome(lead_id, won, datetime(2026, 1, 9, tzinfo=UTC))
    store.close()


def test_given_two_orgs_when_explain_org_then_the_lead_is_looked_up_in_that_orgs_store(orgs: Path) -> None:
    _decide("acme", "L1")
    found = CliRunner().invoke(app, ["explain", "L1", "--org", "acme", "--offline", "--json"])
    assert found.exit_code == 0, found.output
    assert [d["rep"] for d in json.loads(found.stdout)["decisions"]] == ["r1"]
    elsewhere = CliRunner().invoke(app, ["explain", "L1", "--org", "globex", "--offline"])
    assert elsewhere.exit_code == 1 and "lead 'L1' is unknown" in elsewhere.output


def test_given_two_orgs_when_evaluate_policy_org_then_that_orgs_decisions_are_counted(orgs: Path) -> None:
    _decide("globex", "G1", won=True)
    acme = CliRunner().invoke(app, ["evaluate-policy", "--policy", "round_robin", "--org", "acme", "--json"])
    assert acme.exit_code == 2 and "no closed decisions logged yet" in acme.output
    globex = CliRunner().invoke(app, ["evaluate-policy", "--policy", "round_robin", "--org", "globex", "--json"])
    assert globex.exit_code == 2 and "got 1 logged decisions" in globex.output  # globex's one closed decision
    assert "pat-na1-secret" not in acme.output + globex.output


def test_given_two_orgs_when_model_commands_name_an_org_then_they_use_that_orgs_registry(orgs: Path) -> None:
    from sync.cli.scoring import _state_dir

    acme_models = _state_dir("acme") / "models"
    assert acme_models != _state_dir("globex") / "models"
    listed = CliRunner().invoke(app, ["model", "list", "--org", "acme"])
    assert listed.exit_code == 0 and "no models registered yet" in listed.output
    promote = CliRunner().invoke(app, ["model", "promote", "v0009", "--org", "acme", "--no-rescore"])
    assert promote.exit_code == 2 and "v0009" in promote.output
    rollback = CliRunner().invoke(app, ["model", "rollback", "--org", "globex", "--no-rescore"])
    assert rollback.exit_code == 2, rollback.output


def _leads_csv(path: Path, n: int = 160) -> Path:
    """A CSV export with a free-text column, whose label follows a word in the text and the source."""
    import csv
    import random

    rng = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["source", "message", "Converted"])
        for _ in range(n):
            budget, source = rng.random() < 0.4, rng.choice(["Reference", "Google", "Direct"])
            message = "our budget is approved for this quarter" if budget else rng.choice(["just browsing", "send a brochure"])
            out.writerow([source, message, int(rng.random() < (0.7 if budget else 0.15))])
    return path


def test_given_two_orgs_when_evaluate_org_then_text_is_read_with_that_orgs_encoder(orgs: Path, tmp_path: Path) -> None:
    # Each org names an encoder of its own (missing here, so that loading one fails fast and says which).
    for org in ("acme", "globex"):
        with (orgs / f"{org}.env").open("a", encoding="utf-8") as fh:
            fh.write(f"LEADPILOT_SCORING__ENCODER_MODEL={tmp_path / 'models' / org}\n")
    leads = _leads_csv(tmp_path / "leads.csv")
    args = ["--csv", str(leads), "--label", "Converted", "--text-columns", "message"]

    for org in ("acme", "globex"):
        named = CliRunner().invoke(app, ["evaluate", *args, "--org", org, "--json", str(tmp_path / f"{org}.json")])
        assert named.exit_code == 2, named.output
        assert f"org {org}: model '{tmp_path / 'models' / org}' is not a directory" in named.output
        assert "LEADPILOT_SCORING__ENCODER_MODEL" in named.output and not (tmp_path / f"{org}.json").exists()
    # train --csv registers in acme's registry, so it reads text with acme's encoder too
    train = CliRunner().invoke(app, ["train", *args, "--org", "acme"])
    assert train.exit_code == 2 and f"org acme: model '{tmp_path / 'models' / 'acme'}'" in train.output, train.output

    # Without text no encoder is loaded: the org's evaluation runs; an unknown org is named.
    plain = ["--csv", str(leads), "--label", "Converted", "--drop", "message"]
    globex = CliRunner().invoke(app, ["evaluate", *plain, "--org", "globex", "--json", str(tmp_path / "globex.json")])
    assert globex.exit_code == 0, globex.output
    assert json.loads((tmp_path / "globex.json").read_text())["n_test"] == 40
    unknown = CliRunner().invoke(app, ["evaluate", *plain, "--org", "initech", "--json", str(tmp_path / "i.json")])
    assert unknown.exit_code == 2 and "--org initech: unknown org; the orgs in" in unknown.output


def test_given_two_orgs_when_evaluate_names_no_org_then_it_evaluates_with_the_env_settings(
        orgs: Path, tmp_path: Path) -> None:
    leads = _leads_csv(tmp_path / "leads.csv")
    result = CliRunner().invoke(app, ["evaluate", "--csv", str(leads), "--label", "Converted", "--drop", "message",
                                      "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output  # a CSV belongs to no org: no "name one with --org"
    assert json.loads((tmp_path / "m.json").read_text())["n_train"] == 120
