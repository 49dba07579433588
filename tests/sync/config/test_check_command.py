"""``leadpilot check`` and ``leadpilot --help`` through the real CLI."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sync.cli import app

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "routing.example.toml"


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    """``leadpilot check`` with ``env`` on top of ``LEADPILOT_CRM=sandbox`` (the CRM has no default)."""
    return CliRunner().invoke(app, ["check", *args], env={"LEADPILOT_CRM": "sandbox", **(env or {})})


def test_leadpilot_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "check" in result.output


def test_given_no_configuration_at_all_when_checked_then_exit_2_saying_what_to_set_first(clean_env: Path) -> None:
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 2
    assert result.stderr.startswith("no configuration found (no LEADPILOT_* variable in the environment or in .env): "
                                    "copy .env.example to .env and set LEADPILOT_CRM")
    assert "1 problem(s)" in result.stderr


def test_given_only_the_sandbox_crm_chosen_when_checked_then_exit_1_saying_there_is_nothing_to_connect_to(
    clean_env: Path,
) -> None:
    # .env.example copied as it is: `sync` and `run` would fail at once ("HubSpot access token is
    # not set"), so check must not say "all checks passed"
    result = _run()
    assert result.exit_code == 1, result.output
    assert "settings: crm=sandbox store=sqlite:///state/leadpilot.db" in result.stdout
    assert "routing: no routing.toml" in result.stdout
    assert "store: new SQLite file" in result.stdout
    assert result.stderr.startswith("crm: sandbox: nothing to connect to: LEADPILOT_CRM=sandbox talks to a sandbox "
                                    "started with `leadpilot sandbox serve`")
    assert "LEADPILOT_CRM=salesforce or hubspot" in result.stderr
    assert "all checks passed" not in result.output
    offline = _run("--offline")
    assert offline.exit_code == 0 and "configuration valid" in offline.stdout


def test_given_a_misspelt_crm_when_checked_then_exit_2_naming_the_variable(clean_env: Path) -> None:
    result = _run(env={"LEADPILOT_CRM": "salesforc"})
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "LEADPILOT_CRM: got 'salesforc': Input should be 'salesforce', 'hubspot' or 'sandbox'; "
        "e.g. LEADPILOT_CRM=salesforce"
    )


def test_given_a_malformed_routing_file_when_checked_then_exit_2_naming_file_and_line(
    clean_env: Path,
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("max_open = 40", "max_open = forty")
    (clean_env / "routing.toml").write_text(text, encoding="utf-8")
    result = _run()
    assert result.exit_code == 2
    line = next(i for i, s in enumerate(text.splitlines(), start=1) if "max_open = forty" in s)
    assert result.stderr.startswith(f"routing.toml:{line}: not valid TOML: ")


def test_given_an_invalid_routing_value_and_an_invalid_setting_then_both_are_listed(clean_env: Path) -> None:
    routing = clean_env / "team.toml"
    routing.write_text('[[reps]]\nid = "r1"\nmax_open = -1\n', encoding="utf-8")
    result = _run(env={"LEADPILOT_ROUTING__FILE": str(routing), "LEADPILOT_METRICS_PORT": "-5"})
    assert result.exit_code == 2
    problems = result.stderr.splitlines()
    assert problems[0].startswith("LEADPILOT_METRICS_PORT: got '-5'")
    assert problems[1].startswith(
        f"{routing}:3: reps[0].max_open: Input should be greater than or equal to 0"
    )
    assert problems[2] == "2 problem(s): fix them and run `leadpilot check` again."


def test_given_a_named_routing_file_that_does_not_exist_then_exit_2(clean_env: Path) -> None:
    result = _run(env={"LEADPILOT_ROUTING__FILE": "/etc/leadpilot/routing.tmol"})
    assert result.exit_code == 2
    assert result.stderr.startswith("LEADPILOT_ROUTING__FILE: '/etc/leadpilot/routing.tmol' does not exist")


def test_given_the_example_routing_file_then_it_is_summarised(clean_env: Path) -> None:
    shutil.copy(EXAMPLE, clean_env / "routing.toml")
    result = _run("--offline")
    assert result.exit_code == 0, result.output
    assert "routing: routing.toml: 4 rep(s), 5 territory(ies), ok" in result.stdout


def test_given_salesforce_without_auth_then_exit_2_saying_what_to_set(clean_env: Path) -> None:
    result = _run(env={"LEADPILOT_CRM": "salesforce"})
    assert result.exit_code == 2
    assert result.stderr.startswith("LEADPILOT_SALESFORCE__AUTH__KIND: not set but LEADPILOT_CRM=salesforce")


def test_given_an_unreachable_store_then_exit_1_without_the_password(clean_env: Path) -> None:
    result = _run(
        env={"LEADPILOT_STORE_URL": "postgresql://lp:hunter2@127.0.0.1:1/leadpilot?connect_timeout=2"}
    )
    assert result.exit_code == 1
    assert "LEADPILOT_STORE_URL: cannot connect to the store" in result.stderr
    assert "hunter2" not in result.output


def test_given_a_migrated_store_then_its_schema_revision_is_shown(clean_env: Path, db_url: str) -> None:
    from alembic.script import ScriptDirectory

    from sync.store import Store
    from sync.store.engine import alembic_config

    Store.open(db_url).close()
    result = _run(env={"LEADPILOT_STORE_URL": db_url})
    assert result.exit_code == 1, result.output  # the store is fine; no sandbox CRM is configured
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    assert f"store: reachable, schema {head}" in result.stdout


@pytest.fixture
def hubspot_sandbox() -> Iterator[Any]:
    server_module = pytest.importorskip("sandbox.server")
    with server_module.SandboxServer(seed=3) as server:
        yield server


@pytest.mark.integration
def test_given_a_reachable_crm_when_checked_then_the_api_budget_is_printed(
    clean_env: Path, hubspot_sandbox: Any
) -> None:
    pytest.importorskip("sync.wiring.connector")
    info = hubspot_sandbox.info
    env = {
        "LEADPILOT_CRM": "hubspot",
        "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
        "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"],
        "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_cert"],
    }
    before = _run(env=env)  # properties not created yet: a ✗ each in the checklist, exit 2
    assert before.exit_code == 2
    assert "✗ property leadpilot_score on contacts — missing" in before.stdout
    assert "run `leadpilot init-crm`" in before.stdout

    assert CliRunner().invoke(app, ["init-crm"], env=env).exit_code == 0
    result = _run(env=env)
    assert result.exit_code == 0, result.output
    assert "✓ access token accepted" in result.stdout and "✗" not in result.stdout
    assert re.search(r"✓ daily API budget — \d+ of \d+ calls left", result.stdout)
    assert info["hubspot"]["access_token"] not in result.output

    # a routing file naming a user the CRM does not have: a warning, not a failure
    (clean_env / "routing.toml").write_text('[[reps]]\nemail = "ghost@nowhere.example"\n', encoding="utf-8")
    with_routing = _run(env=env)
    assert with_routing.exit_code == 0, with_routing.output
    assert "warning: rep 'ghost@nowhere.example' is not a CRM user; it gets no leads" in with_routing.stderr

    # a fallback owner by an e-mail no CRM user has: its leads would stay put, so check fails
    (clean_env / "routing.toml").write_text('[fallback]\nowner = "queue@nowhere.example"\n', encoding="utf-8")
    bad_fallback = _run(env=env)
    assert bad_fallback.exit_code == 2, bad_fallback.output
    assert ("routing: routing.toml: [fallback] owner: the fallback owner 'queue@nowhere.example' is not a CRM "
            "user: leads no rep can take would stay with their current owner") in bad_fallback.stderr
    assert "all checks passed" not in bad_fallback.output
    email = next(iter(hubspot_sandbox.world.reps.values())).email.upper()  # e-mails match in any case
    (clean_env / "routing.toml").write_text(f'[fallback]\nowner = "{email}"\n', encoding="utf-8")
    good_fallback = _run(env=env)
    assert good_fallback.exit_code == 0, good_fallback.output

    # LEADPILOT_CRM=sandbox with the HubSpot settings pointed at the sandbox: checked as HubSpot
    (clean_env / "routing.toml").unlink()
    as_sandbox = _run(env={**env, "LEADPILOT_CRM": "sandbox"})
    assert as_sandbox.exit_code == 0, as_sandbox.output
    assert "✓ access token accepted" in as_sandbox.stdout


@pytest.mark.integration
def test_given_a_wrong_crm_token_when_checked_then_exit_2_and_the_token_is_not_shown(
    clean_env: Path, hubspot_sandbox: Any
) -> None:
    pytest.importorskip("sync.wiring.connector")
    info = hubspot_sandbox.info
    env = {
        "LEADPILOT_CRM": "hubspot",
        "LEADPILOT_HUBSPOT__ACCESS_TOKEN": "pat-wrong-token-123",
        "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"],
        "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_cert"],
    }
    result = _run(env=env)
    assert result.exit_code == 2, result.output
    assert "✗ access token accepted" in result.stdout and "invalid, expired or revoked" in result.stdout
    assert "lacks a permission" not in result.output
    assert "pat-wrong-token-123" not in result.output

    # the sync stops at once with the same advice (no "refresh token": nothing is refreshed)
    synced = CliRunner().invoke(app, ["sync", "--once"], env={**env, "LEADPILOT_METRICS_PORT": "0"})
    assert synced.exit_code == 2, synced.output
    assert "cannot start: hubspot access token: HubSpot rejected the access token (401)" in synced.stderr
    assert "pat-wrong-token-123" not in synced.output
