"""Strict configuration: a ``LEADPILOT_*`` variable nothing reads is an error with "did you mean",
the CRM has no default, and every settings error names the variable an admin really sets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sync.config.loading import ConfigError, load_checked
from sync.config.settings import Settings
from sync.config.strict import ELSEWHERE, known_variables, mapping_prefixes
from sync.wiring.connector import secret_files

REPO = Path(__file__).resolve().parents[3]


def _problems(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_checked()
    return info.value.problems


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LEADPILOT_CMR": "salesforce"}, "LEADPILOT_CMR (environment): no such setting; did you mean LEADPILOT_CRM?"),
        (
            {"LEADPILOT_CRM": "sandbox", "LEADPILOT_DRYRUN": "true"},
            "LEADPILOT_DRYRUN (environment): no such setting; did you mean LEADPILOT_DRY_RUN?",
        ),
        (
            {"LEADPILOT_CRM": "sandbox", "LEADPILOT_ROUTING__EXPLORATON": "0.5"},
            "LEADPILOT_ROUTING__EXPLORATON (environment): no such setting; "
            "did you mean LEADPILOT_ROUTING__EXPLORATION_FLOOR?",
        ),
        (
            {"LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACESS_TOKEN_FILE": "/run/x"},
            "did you mean LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE?",
        ),
        ({"LEADPILOT_CRM": "sandbox", "LEADPILOT_ZZZ": "1"}, "LEADPILOT_ZZZ (environment): no such setting; "
                                                              "every setting is listed in .env.example"),
    ],
)
def test_given_a_misspelt_variable_then_it_is_an_error_naming_it_and_the_nearest_setting(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    problems = _problems(monkeypatch, **env)
    assert any(line.startswith(expected) or expected in line for line in problems), problems


def test_given_a_misspelt_crm_variable_then_the_crm_is_not_silently_defaulted(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = _problems(monkeypatch, LEADPILOT_CMR="salesforce")
    assert problems[1].startswith("LEADPILOT_CRM: not set: ") and "sandbox" in problems[1]


def test_given_an_empty_dotenv_or_an_empty_crm_then_what_to_set_is_said(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text("# copied, not edited yet\n", encoding="utf-8")
    assert _problems(monkeypatch)[0].startswith("no configuration found (no LEADPILOT_* variable in the environment "
                                                "or in .env): copy .env.example to .env and set LEADPILOT_CRM")
    (clean_env / ".env").write_text("LEADPILOT_CRM=\n", encoding="utf-8")
    assert _problems(monkeypatch)[0].startswith("LEADPILOT_CRM: not set: ")


def test_given_a_typo_in_dotenv_then_the_file_is_named(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("LEADPILOT_CRM=sandbox\nLEADPILOT_SHADDOW=true\n", encoding="utf-8")
    problems = _problems(monkeypatch)
    assert problems == ["LEADPILOT_SHADDOW (.env): no such setting; did you mean LEADPILOT_SHADOW?"]


def test_given_a_section_typo_inside_section_json_then_the_variable_is_named_not_the_section(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = _problems(monkeypatch, LEADPILOT_CRM="sandbox", LEADPILOT_ROUTING='{"exploraton": 0.5}')
    assert problems == [
        "LEADPILOT_ROUTING__EXPLORATON: no such setting; did you mean LEADPILOT_ROUTING__EXPLORATION_FLOOR?"
    ]


def test_given_variables_that_something_reads_then_they_are_accepted(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / "token").write_text("pat-na1-x", encoding="utf-8")
    for key, value in {
        "LEADPILOT_CRM": "hubspot",
        "LEADPILOT_TEST_PG_URL": "postgresql://postgres@127.0.0.1:5432/test",  # tests/conftest.py
        "LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE": str(clean_env / "token"),
        "LEADPILOT_SALESFORCE__SOURCE_FIELDS__INDUSTRY": "Industry__c",  # one key of a mapping
        "LEADPILOT_SCORING": '{"min_history": 50}',  # a whole section as JSON
        "leadpilot_dry_run": "true",  # names are case-insensitive, as pydantic-settings reads them
    }.items():
        monkeypatch.setenv(key, value)
    loaded = load_checked()
    assert loaded.settings.salesforce.source_fields == {"industry": "Industry__c"}
    assert loaded.settings.scoring.min_history == 50 and loaded.settings.dry_run
    assert loaded.warnings == []


def test_every_leadpilot_variable_read_outside_the_settings_is_a_known_name() -> None:
    # A LEADPILOT_ variable read through os.environ (a test harness, a helper) must not be
    # reported as a typo: it belongs in strict.ELSEWHERE.
    pattern = re.compile(r"""(?:environ(?:\.get)?\(?\[?|getenv\()\s*["'](LEADPILOT_[A-Z0-9_]+)["']""")
    read = set()
    for folder in ("connectors", "scoring", "allocation", "sync", "sandbox", "tests", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            read |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert "LEADPILOT_TEST_PG_URL" in read
    assert read - known_variables(Settings) == set()
    assert set(ELSEWHERE) <= known_variables(Settings)


def test_given_nothing_configured_then_the_first_problem_says_what_to_set_first(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_checked()
    assert info.value.problems == [info.value.problems[0]]
    assert info.value.problems[0].startswith("no configuration found")
    assert "copy .env.example to .env and set LEADPILOT_CRM" in info.value.problems[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"LEADPILOT_SALESFORCE__AUTH__KIND": "password", "LEADPILOT_SALESFORCE__AUTH__USERNAME": "u@acme.com"},
            "LEADPILOT_SALESFORCE__AUTH__PASSWORD: Field required; e.g. LEADPILOT_SALESFORCE__AUTH__PASSWORD=<secret> "
            "(or LEADPILOT_SALESFORCE__AUTH__PASSWORD_FILE=",
        ),
        (
            {"LEADPILOT_SALESFORCE__AUTH__KIND": "client_credentials", "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": "k",
             "LEADPILOT_SALESFORCE__AUTH__CONSUMER_SECRET": "s", "LEADPILOT_SALESFORCE__AUTH__PASSWORD": "pw"},
            "LEADPILOT_SALESFORCE__AUTH__PASSWORD: not read with this LEADPILOT_SALESFORCE__AUTH__KIND "
            "(got 'client_credentials')",
        ),
    ],
)
def test_given_an_auth_mode_problem_then_the_variable_is_one_an_admin_sets(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    problems = _problems(monkeypatch, LEADPILOT_CRM="salesforce", **env)
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    assert "__PASSWORD__PASSWORD" not in problems[0] and "__CLIENT_CREDENTIALS__" not in problems[0]


def test_given_a_secret_and_its_file_then_a_warning_says_the_variable_wins_and_the_connector_agrees(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / "token").write_text("pat-na1-from-file", encoding="utf-8")
    monkeypatch.setenv("LEADPILOT_CRM", "hubspot")
    monkeypatch.setenv("LEADPILOT_HUBSPOT__ACCESS_TOKEN", "pat-na1-from-env")
    monkeypatch.setenv("LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE", str(clean_env / "token"))
    loaded = load_checked()
    assert loaded.warnings == [
        "warning: LEADPILOT_HUBSPOT__ACCESS_TOKEN and LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE are both set: "
        "LEADPILOT_HUBSPOT__ACCESS_TOKEN wins and the file is ignored; unset one of them"
    ]
    token = loaded.settings.hubspot.access_token
    assert token is not None and token.get_secret_value() == "pat-na1-from-env"
    # the connector must not re-read the file the warning says is ignored
    assert secret_files("hubspot", loaded.settings.hubspot) == {}


def test_the_docs_and_deploy_files_name_only_variables_that_exist() -> None:
    # An admin copies these names; a typo there would now stop the daemon.
    known = known_variables(Settings)
    prefixes = tuple(mapping_prefixes(Settings))
    files = [REPO / "README.md", REPO / ".env.example", *(REPO / "deploy").rglob("*"), *(REPO / "docs").rglob("*.md")]
    wrong = set()
    for path in (p for p in files if p.is_file()):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "did you mean" in line:  # a quoted error message shows the typo on purpose
                continue
            wrong |= {(path.name, name) for name in re.findall(r"LEADPILOT_[A-Z0-9_]*[A-Z0-9]", line)
                      if name not in known and not name.startswith(prefixes)}
    assert wrong == set()
