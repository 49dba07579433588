"""``LEADPILOT_ORGS_DIR``: one settings file per org, each org's settings apart, problems in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.config.loading import ConfigError
from sync.config.orgs import all_org_settings, load_org, org_names, org_settings

SALESFORCE = ("LEADPILOT_CRM=salesforce\nLEADPILOT_SALESFORCE__AUTH__KIND=password\n"
              "LEADPILOT_SALESFORCE__AUTH__USERNAME=ops@acme.example\nLEADPILOT_SALESFORCE__AUTH__PASSWORD=pw\n"
              "LEADPILOT_SALESFORCE__AUTH__SECURITY_TOKEN=tok\n")
HUBSPOT = "LEADPILOT_CRM=hubspot\nLEADPILOT_HUBSPOT__ACCESS_TOKEN=pat-na1-secret\n"


@pytest.fixture
def orgs(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = clean_env / "orgs"
    directory.mkdir()
    (directory / "acme.env").write_text(SALESFORCE, encoding="utf-8")
    (directory / "globex.env").write_text(HUBSPOT, encoding="utf-8")
    (directory / "README.txt").write_text("not an org", encoding="utf-8")
    monkeypatch.setenv("LEADPILOT_ORGS_DIR", str(directory))
    return directory


def test_given_no_orgs_dir_then_there_are_no_named_orgs(clean_env: Path) -> None:
    assert org_names() == []


def test_given_an_orgs_dir_in_dotenv_then_its_files_are_the_orgs(clean_env: Path) -> None:
    (clean_env / "o").mkdir()
    (clean_env / "o" / "acme.env").write_text(SALESFORCE, encoding="utf-8")
    (clean_env / ".env").write_text(f"LEADPILOT_ORGS_DIR={clean_env / 'o'}\n", encoding="utf-8")
    assert org_names() == ["acme"]


def test_given_two_org_files_then_each_org_has_its_crm_files_and_store_apart(orgs: Path) -> None:
    assert org_names() == ["acme", "globex"]
    acme, globex = org_settings("acme"), org_settings("globex")
    assert (acme.crm, acme.org, globex.crm, globex.org) == ("salesforce", "acme", "hubspot", "globex")
    assert acme.state_dir == Path("state/acme") and globex.state_dir == Path("state/globex")
    assert acme.resolved_store_url == "sqlite:///state/acme/leadpilot.db"
    assert (acme.store_schema, globex.store_schema) == ("org_acme", "org_globex")
    assert set(all_org_settings()) == {"acme", "globex"}


def test_given_a_shared_store_url_then_each_org_gets_its_own_sqlite_file_or_schema(
        orgs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADPILOT_STORE_URL", "sqlite:////var/lib/leadpilot/leadpilot.db")
    assert org_settings("acme").resolved_store_url == "sqlite:////var/lib/leadpilot/leadpilot-acme.db"
    monkeypatch.setenv("LEADPILOT_STORE_URL", "postgresql://lp@db/leadpilot")
    assert org_settings("globex").resolved_store_url == "postgresql://lp@db/leadpilot"


def test_given_no_orgs_dir_then_settings_have_no_org(clean_env: Path) -> None:
    (clean_env / ".env").write_text(HUBSPOT, encoding="utf-8")
    from sync.config.loading import load_checked

    settings = load_checked().settings
    assert (settings.org, settings.store_schema, settings.state_dir) == (None, None, Path("state"))


def test_given_an_unknown_org_then_the_error_names_the_known_ones(orgs: Path) -> None:
    with pytest.raises(ConfigError) as info:
        org_settings("initech")
    assert info.value.problems == [f"--org initech: unknown org; the orgs in {orgs} are acme, globex"]


def test_given_a_bad_value_in_an_org_file_then_the_problem_names_the_file_and_the_variable(orgs: Path) -> None:
    (orgs / "globex.env").write_text(HUBSPOT + "LEADPILOT_METRICS_PORT=lots\nLEADPILOT_CMR=x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_org("globex")
    lines = info.value.problems
    assert lines and all(str(orgs / "globex.env") in line for line in lines)
    assert any("LEADPILOT_METRICS_PORT" in line for line in lines)
    assert any("LEADPILOT_CMR" in line and "LEADPILOT_CRM" in line for line in lines)
    assert "pat-na1-secret" not in str(info.value)
    with pytest.raises(ConfigError) as every:
        all_org_settings()
    assert every.value.problems == lines


def test_given_a_file_name_that_is_no_org_name_then_it_is_named(orgs: Path) -> None:
    (orgs / "Acme Corp.env").write_text(SALESFORCE, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        org_names()
    assert info.value.problems[0].startswith(f"{orgs / 'Acme Corp.env'}: not an org name")


@pytest.mark.parametrize("make, expected", [
    (lambda d: None, "not a directory"),
    (lambda d: d.mkdir(), "no org settings file in it"),
])
def test_given_a_missing_or_empty_orgs_dir_then_it_says_so(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch, make: object, expected: str) -> None:
    directory = clean_env / "orgs"
    make(directory)  # type: ignore[operator]
    monkeypatch.setenv("LEADPILOT_ORGS_DIR", str(directory))
    with pytest.raises(ConfigError) as info:
        org_names()
    assert info.value.problems[0].startswith(f"LEADPILOT_ORGS_DIR={directory}: {expected}")


def test_given_no_orgs_dir_when_an_org_is_asked_for_then_it_says_what_to_set(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        org_settings("acme")
    assert "set LEADPILOT_ORGS_DIR" in info.value.problems[0]


def _choose(args: list[str]) -> tuple[int, str]:
    """Run a tiny command built on the shared --org / --all options; (exit code, output)."""
    import typer

    from sync.cli.common import ALL_ORGS_OPTION, ORG_OPTION, org_settings_or_exit

    app = typer.Typer()

    @app.command()
    def show(org: str | None = ORG_OPTION, all_orgs: bool = ALL_ORGS_OPTION) -> None:
        typer.echo(" ".join(f"{s.org}:{s.crm}" for s in org_settings_or_exit(org, all_orgs)))

    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_given_orgs_when_a_command_takes_org_or_all_then_it_gets_those_orgs(orgs: Path) -> None:
    assert _choose(["--org", "globex"]) == (0, "globex:hubspot\n")
    assert _choose(["--all"]) == (0, "acme:salesforce globex:hubspot\n")
    code, output = _choose([])
    assert code == 2 and "several orgs (acme, globex): name one with --org NAME, or give --all" in output
    code, output = _choose(["--org", "acme", "--all"])
    assert code == 2 and "give one of them" in output


def test_given_no_orgs_dir_when_a_command_takes_all_then_it_is_the_dotenv_org(clean_env: Path) -> None:
    (clean_env / ".env").write_text(HUBSPOT, encoding="utf-8")
    assert _choose(["--all"]) == (0, "None:hubspot\n")
    assert _choose([]) == (0, "None:hubspot\n")
    code, output = _choose(["--org", "acme"])
    assert code == 2 and "no orgs directory configured" in output
