"""``leadpilot init-crm`` against the sandbox: creates once, then says nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from sync.cli import app

pytestmark = pytest.mark.integration


def env_for(server: Any, crm: str) -> dict[str, str]:
    info = server.info
    sf = info["salesforce"]
    if crm == "hubspot":
        return {"LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
                "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_cert"]}
    return {"LEADPILOT_CRM": "salesforce", "LEADPILOT_SALESFORCE__AUTH__KIND": "password",
            "LEADPILOT_SALESFORCE__AUTH__USERNAME": sf["username"], "LEADPILOT_SALESFORCE__AUTH__PASSWORD": sf["password"],
            "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": sf["client_id"],
            "LEADPILOT_SALESFORCE__AUTH__CONSUMER_SECRET": sf["client_secret"],
            "LEADPILOT_SALESFORCE__LOGIN_URL": sf["instance_url"], "LEADPILOT_SALESFORCE__CA_BUNDLE": info["ca_cert"]}


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_a_new_org_when_init_crm_twice_then_created_once_then_nothing_changed(
        sandbox_factory: Any, crm: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = sandbox_factory(seed=1, leads=3)
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()
    first = runner.invoke(app, ["init-crm"], env=env_for(server, crm))
    assert first.exit_code == 0, first.output
    if crm == "hubspot":
        # score, grade, reasons, opportunity, model version, scored at, and the routing reason
        # (created even while LEADPILOT_ROUTING__WRITE_REASON is off, so turning it on needs no init-crm)
        assert first.output.count("created property leadpilot_") == 7
    else:  # the fields, then the permission sets, layout section and list view (connectors/salesforce/setup.py)
        assert "create Lead fields LeadPilot_Score__c, LeadPilot_Grade__c" in first.output
    second = runner.invoke(app, ["init-crm"], env=env_for(server, crm))
    assert second.exit_code == 0 and "nothing changed" in second.output


def test_given_a_wrong_token_when_init_crm_then_exit_1_with_a_message_and_no_secret(
        sandbox_factory: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = sandbox_factory(seed=1, leads=3)
    monkeypatch.chdir(tmp_path)
    env = {**env_for(server, "hubspot"), "LEADPILOT_HUBSPOT__ACCESS_TOKEN": "pat-na1-00000000-wrong"}
    result = CliRunner().invoke(app, ["init-crm"], env=env)
    assert result.exit_code == 1
    assert "init-crm failed" in result.output and "HubSpot rejected the access token" in result.output
    assert "pat-na1-00000000-wrong" not in result.output
