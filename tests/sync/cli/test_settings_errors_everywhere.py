"""Every command that loads the settings fails on a settings error in words: exit 2, one line
naming each variable, never a traceback — and the daemon does not start without a CRM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app

COMMANDS = [["run"], ["sync", "--once"], ["rewards", "--once"], ["status"], ["report"], ["train"],
            ["evaluate-policy", "--policy", "ucb1"], ["init-crm"], ["check"], ["model", "list"]]
NEEDS_CRM = [c for c in COMMANDS if c[0] != "model"]  # the model registry needs no CRM

CASES = {
    "typo": ({"LEADPILOT_CRM": "sandbox", "LEADPILOT_DRYRUN": "true"},
             "LEADPILOT_DRYRUN (environment): no such setting; did you mean LEADPILOT_DRY_RUN?"),
    "section typo": ({"LEADPILOT_CRM": "sandbox", "LEADPILOT_ROUTING__EXPLORATON": "0.5"},
                     "did you mean LEADPILOT_ROUTING__EXPLORATION_FLOOR?"),
    "not json": ({"LEADPILOT_CRM": "sandbox", "LEADPILOT_ROUTING__REASSIGN_FROM": "00G1,00G2"},
                 "LEADPILOT_ROUTING__REASSIGN_FROM: not JSON (lists and mappings are written as JSON)"),
    "missing file": ({"LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE": "/nonexistent/hubspot"},
                     "LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE: cannot read '/nonexistent/hubspot'"),
    "auth field": ({"LEADPILOT_CRM": "salesforce", "LEADPILOT_SALESFORCE__AUTH__KIND": "password",
                    "LEADPILOT_SALESFORCE__AUTH__USERNAME": "u@acme.com"},
                   "LEADPILOT_SALESFORCE__AUTH__PASSWORD: Field required"),
    "field name": ({"LEADPILOT_CRM": "sandbox",
                    "LEADPILOT_SALESFORCE__TEXT_FIELDS": '["Industry FROM Lead WHERE Name != null --"]'},
                   "LEADPILOT_SALESFORCE__TEXT_FIELDS: got 'Industry FROM Lead WHERE Name != null --': not a field name"),
}


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LEADPILOT_* variables and an empty working directory (no .env)."""
    for key in list(os.environ):
        if key.upper().startswith("LEADPILOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_given_a_settings_error_when_any_command_runs_then_exit_2_with_the_variable_and_no_traceback(
    clean_env: Path, command: list[str], case: str
) -> None:
    env, expected = CASES[case]
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit | None)
    assert not [line for line in result.stderr.splitlines() if line.startswith(("  File ", "pydantic"))]


@pytest.mark.parametrize("command", NEEDS_CRM, ids=" ".join)
def test_given_no_crm_chosen_when_a_command_needs_one_then_it_refuses_to_start(
    clean_env: Path, command: list[str]
) -> None:
    result = CliRunner().invoke(app, command, env={"LEADPILOT_HUBSPOT__ACCESS_TOKEN": "pat-na1-x",
                                                   "LEADPILOT_STATE_DIR": str(clean_env / "state")})
    assert result.exit_code == 2, result.output
    assert "LEADPILOT_CRM: not set: " in result.stderr and "e.g. LEADPILOT_CRM=salesforce" in result.stderr
    assert not (clean_env / "state").exists()  # nothing was opened or written


@pytest.mark.parametrize("command", NEEDS_CRM, ids=" ".join)
def test_given_nothing_configured_when_a_command_runs_then_it_says_what_to_set_first(
    clean_env: Path, command: list[str]
) -> None:
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("no configuration found (no LEADPILOT_* variable in the environment or in .env): "
                                    "copy .env.example to .env and set LEADPILOT_CRM")


def test_given_a_secret_and_its_file_when_a_command_runs_then_it_warns_which_wins(clean_env: Path) -> None:
    (clean_env / "token").write_text("pat-na1-file", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--offline"], env={
        "LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": "pat-na1-env",
        "LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE": str(clean_env / "token")})
    assert result.exit_code == 0, result.output
    assert ("warning: LEADPILOT_HUBSPOT__ACCESS_TOKEN and LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE are both set: "
            "LEADPILOT_HUBSPOT__ACCESS_TOKEN wins") in result.stderr
    assert "pat-na1-env" not in result.output and "pat-na1-file" not in result.output


def test_given_an_env_file_option_then_check_reads_that_file(clean_env: Path) -> None:
    service_env = clean_env / "leadpilot.env"
    service_env.write_text("LEADPILOT_CRM=sandbox\nLEADPILOT_DRYRUN=true\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check", "--offline", "--env-file", str(service_env)])
    assert result.exit_code == 2
    assert f"LEADPILOT_DRYRUN ({service_env}): no such setting; did you mean LEADPILOT_DRY_RUN?" in result.stderr


def test_given_an_env_file_that_does_not_exist_then_check_says_so(clean_env: Path) -> None:
    result = CliRunner().invoke(app, ["check", "--offline", "--env-file", "/etc/leadpilot/leadpliot.env"],
                                env={"LEADPILOT_CRM": "sandbox"})
    assert result.exit_code == 2
    assert "--env-file: '/etc/leadpilot/leadpliot.env' is not a readable file" in result.stderr


def test_given_a_sqlite_store_in_a_missing_directory_then_check_fails_naming_it(clean_env: Path) -> None:
    missing = clean_env / "var" / "lib" / "leadpoilot"
    result = CliRunner().invoke(app, ["check", "--offline"], env={
        "LEADPILOT_CRM": "sandbox", "LEADPILOT_STORE_URL": f"sqlite:///{missing}/leadpilot.db"})
    assert result.exit_code == 2
    assert (f"LEADPILOT_STORE_URL: the directory '{missing}' of the SQLite store does not exist; "
            f"create it (mkdir -p {missing}") in result.stderr
    missing.mkdir(parents=True)
    ok = CliRunner().invoke(app, ["check", "--offline"], env={
        "LEADPILOT_CRM": "sandbox", "LEADPILOT_STORE_URL": f"sqlite:///{missing}/leadpilot.db"})
    assert ok.exit_code == 0, ok.output
