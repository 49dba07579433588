"""Settings: environment and .env, *_FILE secrets, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.salesforce.settings import SalesforceJWT, SalesforcePassword
from sync.config.problems import describe_settings_error
from sync.config.settings import Settings


def _errors(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for key, value in {"LEADPILOT_CRM": "sandbox", **env}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError) as info:
        Settings()
    return describe_settings_error(info.value)


def test_given_no_crm_then_settings_refuse_to_load_naming_the_variable(clean_env: Path) -> None:
    with pytest.raises(ValueError) as info:
        Settings()
    (line,) = describe_settings_error(info.value)
    assert line.startswith("LEADPILOT_CRM: not set") and "e.g. LEADPILOT_CRM=salesforce" in line


def test_given_only_the_crm_then_safe_defaults(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    settings = Settings()
    assert settings.crm == "sandbox"
    assert (settings.dry_run, settings.shadow) == (False, False)
    assert settings.resolved_store_url == "sqlite:///state/leadpilot.db"
    assert settings.problems() == []


def test_given_nested_variables_and_a_dotenv_file_then_both_are_read_env_first(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        "LEADPILOT_CRM=hubspot\nLEADPILOT_HUBSPOT__OBJECT_TYPE=leads\nLEADPILOT_METRICS_PORT=9000\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LEADPILOT_METRICS_PORT", "9100")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__SOURCE_FIELDS", '{"industry": "Industry__c"}')
    monkeypatch.setenv("LEADPILOT_LOG_LEVEL", "debug")
    settings = Settings()
    assert (settings.crm, settings.hubspot.object_type, settings.metrics_port) == ("hubspot", "leads", 9100)
    assert settings.salesforce.source_fields == {"industry": "Industry__c"}
    assert settings.log_level == "DEBUG"


def test_given_a_discriminated_auth_mode_then_the_matching_model_is_built(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = clean_env / "sf.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
    monkeypatch.setenv("LEADPILOT_CRM", "salesforce")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__AUTH__KIND", "jwt")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__AUTH__USERNAME", "integration@acme.com")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY", "3MVG9abc")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__AUTH__PRIVATE_KEY_FILE", str(key))
    settings = Settings()
    assert isinstance(settings.salesforce.auth, SalesforceJWT)
    assert settings.salesforce.auth.private_key_file == key  # a path, not read as a secret
    assert settings.problems() == []


def test_given_secrets_in_files_then_they_are_read_and_never_shown(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    (clean_env / "pw").write_text("s3cret-pw\n", encoding="utf-8")
    (clean_env / "token").write_text("pat-na1-abc\n", encoding="utf-8")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__AUTH__KIND", "password")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__AUTH__USERNAME", "u@acme.com")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__AUTH__PASSWORD_FILE", str(clean_env / "pw"))
    (clean_env / ".env").write_text(
        f"LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE={clean_env / 'token'}\n", encoding="utf-8"
    )
    settings = Settings()
    auth = settings.salesforce.auth
    assert isinstance(auth, SalesforcePassword) and auth.password.get_secret_value() == "s3cret-pw"
    assert settings.hubspot.access_token is not None
    assert settings.hubspot.access_token.get_secret_value() == "pat-na1-abc"
    assert "s3cret" not in repr(settings) and "pat-na1" not in repr(settings)


def test_given_a_secret_both_inline_and_in_a_file_then_the_variable_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    (clean_env / "token").write_text("from-file", encoding="utf-8")
    monkeypatch.setenv("LEADPILOT_HUBSPOT__ACCESS_TOKEN", "from-env")
    monkeypatch.setenv("LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE", str(clean_env / "token"))
    token = Settings().hubspot.access_token
    assert token is not None and token.get_secret_value() == "from-env"


def test_given_a_routing_file_variable_then_it_is_a_path_and_not_a_secret_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    # LEADPILOT_ROUTING__FILE ends in _FILE; the file need not exist for settings to load.
    monkeypatch.setenv("LEADPILOT_ROUTING__FILE", "/etc/leadpilot/routing.toml")
    assert Settings().routing.file == Path("/etc/leadpilot/routing.toml")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"LEADPILOT_CRM": "salesforc"},
            "LEADPILOT_CRM: got 'salesforc': Input should be 'salesforce', 'hubspot' or 'sandbox'; "
            "e.g. LEADPILOT_CRM=salesforce",
        ),
        (
            {"LEADPILOT_METRICS_PORT": "70000"},
            "LEADPILOT_METRICS_PORT: got '70000': Input should be less than",
        ),
        ({"LEADPILOT_DRY_RUN": "maybe"}, "LEADPILOT_DRY_RUN: got 'maybe'"),
        ({"LEADPILOT_HUBSPOT__OBJECT_TYPE": "deals"}, "e.g. LEADPILOT_HUBSPOT__OBJECT_TYPE=contacts"),
        (
            {"LEADPILOT_SCHEDULE__RETRAIN_CRON": "every sunday"},
            "e.g. LEADPILOT_SCHEDULE__RETRAIN_CRON='0 3 * * 0'",
        ),
        (
            {"LEADPILOT_SALESFORCE__AUTH__KIND": "oauth"},
            "LEADPILOT_SALESFORCE__AUTH__KIND: not one of jwt|client_credentials|password|token (got 'oauth')",
        ),
        (
            {
                "LEADPILOT_SALESFORCE__AUTH__KIND": "token",
                "LEADPILOT_SALESFORCE__AUTH__INSTANCE_URL": "https://x",
            },
            "LEADPILOT_SALESFORCE__AUTH__ACCESS_TOKEN: Field required; e.g. "
            "LEADPILOT_SALESFORCE__AUTH__ACCESS_TOKEN=<secret> (or LEADPILOT_SALESFORCE__AUTH__ACCESS_TOKEN_FILE=",
        ),
        (
            {"LEADPILOT_SCORING__GRADE_THRESHOLDS": "[0.1, 0.5, 0.2]"},
            "LEADPILOT_SCORING__GRADE_THRESHOLDS: grade lower bounds must fall strictly",
        ),
        (
            {"LEADPILOT_ROUTING__REASSIGN_FROM": "00G1,00G2"},
            "LEADPILOT_ROUTING__REASSIGN_FROM: not JSON (lists and mappings are written as JSON); "
            'e.g. LEADPILOT_ROUTING__REASSIGN_FROM=["00G5g000001QueueA"]',
        ),
        (
            {"LEADPILOT_ROUTING__POSTERIOR_EXPLORATION": "0.97"},
            "LEADPILOT_ROUTING__POSTERIOR_EXPLORATION: got '0.97': with exploration_floor 0.05 it must stay below 0.95",
        ),
        (
            {"LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE": "/nonexistent/token"},
            "LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE: cannot read '/nonexistent/token' (No such file or directory)",
        ),
    ],
)
def test_given_an_invalid_value_then_one_line_names_the_variable_and_a_valid_example(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    lines = _errors(monkeypatch, **env)
    assert len(lines) == 1
    assert expected in lines[0]
    assert lines[0].startswith("LEADPILOT_") and "; e.g. LEADPILOT_" in lines[0]


def test_given_several_invalid_values_then_one_line_each(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _errors(monkeypatch, LEADPILOT_CRM="x", LEADPILOT_LOG_FORMAT="xml", LEADPILOT_ROUTING__SEED="a")
    assert sorted(line.split(":")[0] for line in lines) == [
        "LEADPILOT_CRM",
        "LEADPILOT_LOG_FORMAT",
        "LEADPILOT_ROUTING__SEED",
    ]


def test_given_an_invalid_secret_then_its_value_is_not_echoed(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (line,) = _errors(monkeypatch, LEADPILOT_STORE_URL="mysql://lp:hunter2@db/leadpilot")
    assert line.startswith("LEADPILOT_STORE_URL: not a sqlite:/// or postgresql:// URL; e.g.")
    assert "hunter2" not in line


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LEADPILOT_CRM": "salesforce"}, "LEADPILOT_SALESFORCE__AUTH__KIND: not set"),
        ({"LEADPILOT_CRM": "hubspot"}, "LEADPILOT_HUBSPOT__ACCESS_TOKEN: not set"),
        (
            {
                "LEADPILOT_SALESFORCE__AUTH__KIND": "client_credentials",
                "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": "k",
                "LEADPILOT_SALESFORCE__AUTH__CONSUMER_SECRET": "s",
            },
            "LEADPILOT_SALESFORCE__DOMAIN: the client-credentials flow needs the org's My Domain",
        ),
        (
            {
                "LEADPILOT_SALESFORCE__AUTH__KIND": "jwt",
                "LEADPILOT_SALESFORCE__AUTH__USERNAME": "u",
                "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": "k",
                "LEADPILOT_SALESFORCE__AUTH__PRIVATE_KEY_FILE": "/nonexistent.key",
            },
            "LEADPILOT_SALESFORCE__AUTH__PRIVATE_KEY_FILE: '/nonexistent.key' is not a readable file",
        ),
    ],
)
def test_given_a_valid_but_incomplete_configuration_then_problems_say_what_is_missing(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")  # overridden where the case names one
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    problems = Settings().problems()
    assert len(problems) == 1 and problems[0].startswith(expected)
    assert "e.g. LEADPILOT_" in problems[0]
