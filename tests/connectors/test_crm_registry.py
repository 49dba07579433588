"""The CRM registry: names → lazily loaded packages; ``make_connector`` builds through it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.registry import CRMS, SANDBOX_FALLBACK, UnknownCRMError, connector_for, entry
from sync.config.settings import Settings
from sync.wiring.connector import crm_name, make_connector, secret_files

TOKEN_FILE = "LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE"


def test_given_an_unknown_crm_when_looked_up_then_the_error_names_the_known_ones() -> None:
    with pytest.raises(UnknownCRMError, match=r"unknown CRM 'pipedrive': leadpilot speaks salesforce, hubspot"):
        entry("pipedrive")
    with pytest.raises(ValueError, match="unknown CRM"):
        connector_for("pipedrive")


def test_given_an_unknown_crm_when_making_a_connector_then_the_message_names_the_setting() -> None:
    with pytest.raises(ValueError) as info:
        make_connector(Settings(_env_file=None, crm="hubspot"), crm="pipedrive")
    assert str(info.value) == "unknown CRM 'pipedrive': set LEADPILOT_CRM to salesforce, hubspot or sandbox"


def test_every_entry_names_a_package_with_connect_and_sections_of_the_settings_root() -> None:
    root = Settings(_env_file=None, crm="sandbox")
    assert SANDBOX_FALLBACK in CRMS
    for name, crm in CRMS.items():
        assert callable(entry(name).load())
        section = getattr(root, crm.section)
        assert isinstance(section.has_credentials, bool) and section.problems("X_", None) == []
        assert getattr(root, crm.written).model_dump()["score"]


def test_given_a_fresh_process_when_a_hubspot_connector_is_built_then_only_its_client_is_imported() -> None:
    script = (
        "import sys\n"
        "import connectors.registry as r, sync.config.settings, sync.wiring.connector\n"
        "heavy = ('simple_salesforce', 'hubspot', 'connectors.salesforce.connector', 'connectors.hubspot.connector')\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "r.connector_for('hubspot')\n"
        "assert 'connectors.hubspot' in sys.modules and 'connectors.hubspot.connector' not in sys.modules\n"
        "settings = sync.config.settings.Settings(_env_file=None, crm='hubspot', hubspot={'access_token': 'x'})\n"
        "sync.wiring.connector.make_connector(settings)\n"
        "assert 'connectors.hubspot.connector' in sys.modules and 'hubspot' in sys.modules\n"
        "assert 'simple_salesforce' not in sys.modules and 'connectors.salesforce.connector' not in sys.modules\n"
        "print('lazy')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "lazy", done.stderr


@pytest.mark.parametrize(("values", "expected"), [
    ({}, "hubspot"),
    ({"hubspot": {"access_token": "pat-na1-x"}}, "hubspot"),
    ({"salesforce": {"auth": {"kind": "token", "access_token": "00Dx!y", "instance_url": "https://x"}}}, "salesforce"),
    ({"hubspot": {"access_token": "pat-na1-x"},
      "salesforce": {"auth": {"kind": "token", "access_token": "00Dx!y", "instance_url": "https://x"}}}, "salesforce"),
])
def test_given_crm_sandbox_then_salesforce_when_its_auth_is_set_else_hubspot(values: dict, expected: str) -> None:
    settings = Settings(_env_file=None, crm="sandbox", **values)
    assert crm_name(settings) == expected
    assert crm_name(settings, "hubspot") == "hubspot"


def test_given_a_token_file_variable_when_connecting_then_hubspot_reads_that_file_on_each_ask(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None, crm="hubspot", hubspot={"access_token": "pat-na1-static"})
    token = tmp_path / "hubspot"
    token.write_text("pat-na1-first\n")
    monkeypatch.setenv(TOKEN_FILE, str(token))
    assert secret_files("hubspot", settings.hubspot) == {"access_token": str(token)}
    hs = make_connector(settings)
    assert isinstance(hs, HubSpotConnector) and hs._token_provider() == "pat-na1-first"
    token.write_text("pat-na1-rotated")
    assert hs._token_provider() == "pat-na1-rotated"
    token.unlink()
    with pytest.raises(ValueError, match=rf"^{TOKEN_FILE}: cannot read '{token}': No such file or directory$"):
        hs._token_provider()


def test_given_no_hubspot_token_when_connecting_then_the_message_names_both_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_FILE, raising=False)
    assert secret_files("hubspot", Settings(_env_file=None, crm="hubspot").hubspot) == {}
    with pytest.raises(ValueError) as info:
        make_connector(Settings(_env_file=None, crm="hubspot"))
    assert str(info.value) == ("HubSpot access token is not set: LEADPILOT_HUBSPOT__ACCESS_TOKEN or "
                               "LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE")
