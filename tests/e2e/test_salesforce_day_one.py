"""Day one on a fresh Salesforce org, through the admin's CLI with environment variables only.

The sandbox starts as a fresh org: the integration user holds no grant on leadpilot's fields, and
a sales rep is a non-admin user who can see them only through a permission set. ``init-crm`` →
``check`` (every item ✓) → ``sync --once``; the rep then reads score, grade and reasons through
the API with the real client. ``init-crm`` again changes nothing; removing one grant makes
``check`` exit 2 naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.salesforce.session import build_session, login
from connectors.salesforce.settings import SalesforcePassword, SalesforceSettings
from connectors.usage import UsageMeter
from sandbox.server import SandboxServer
from sync.cli import app

pytestmark = pytest.mark.integration


def _env(info: dict[str, Any], state: Path, routing: Path) -> dict[str, str]:
    sf = info["salesforce"]
    return {"LEADPILOT_CRM": "salesforce", "LEADPILOT_SALESFORCE__AUTH__KIND": "password",
            "LEADPILOT_SALESFORCE__AUTH__USERNAME": sf["username"], "LEADPILOT_SALESFORCE__AUTH__PASSWORD": sf["password"],
            "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": sf["client_id"],
            "LEADPILOT_SALESFORCE__AUTH__CONSUMER_SECRET": sf["client_secret"],
            "LEADPILOT_SALESFORCE__LOGIN_URL": sf["instance_url"], "LEADPILOT_SALESFORCE__CA_BUNDLE": info["ca_cert"],
            "LEADPILOT_STATE_DIR": str(state), "LEADPILOT_ROUTING__FILE": str(routing),
            "LEADPILOT_METRICS_PORT": "0", "LEADPILOT_LOG_LEVEL": "WARNING"}


def _client(info: dict[str, Any], username: str, password: str) -> Any:
    """A real simple-salesforce client logged in as ``username`` (password flow)."""
    sf = info["salesforce"]
    settings = SalesforceSettings(auth=SalesforcePassword(username=username, password=password,
                                                          consumer_key=sf["client_id"],
                                                          consumer_secret=sf["client_secret"]),
                                  login_url=sf["instance_url"], ca_bundle=Path(info["ca_cert"]))
    return login(settings, build_session(settings, UsageMeter()))


def test_given_a_fresh_org_when_init_crm_check_and_sync_then_the_rep_reads_scores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()
    with SandboxServer(seed=21, leads=60, scenario="skilled") as srv:
        info = srv.info
        reps = sorted(srv.world.reps)
        rep_email = info["salesforce"]["rep_username"]
        routing = tmp_path / "routing.toml"
        routing.write_text(f'[[reps]]\nemail = "{rep_email}"\n\n[[reps]]\nid = "{reps[1]}"\n\n'
                           f'[fallback]\nowner = "{srv.world.queue_id}"\n', encoding="utf-8")
        env = _env(info, tmp_path / "state", routing)

        def cli(*args: str) -> Any:
            return runner.invoke(app, list(args), env=env, catch_exceptions=False)

        before = cli("check")
        assert before.exit_code == 2, before.output
        assert "✗ field Lead.LeadPilot_Score__c editable — does not exist" in before.stdout
        assert "fix: create it: run `leadpilot init-crm`" in before.stdout

        dry = cli("init-crm", "--dry-run")
        assert dry.exit_code == 0 and "dry run: nothing changed" in dry.stdout
        assert not srv.store.custom_fields["Lead"]
        first = cli("init-crm")
        assert first.exit_code == 0, first.output
        assert first.stdout.replace("would make", "made").replace(" (dry run: nothing changed)", "") == \
            dry.stdout.replace("would make", "made").replace(" (dry run: nothing changed)", "")
        assert f"assign LeadPilot_Reps to {srv.store.get('User', reps[1])['Name']}" in first.stdout

        checked = cli("check")
        assert checked.exit_code == 0, checked.output
        assert "✗" not in checked.output and checked.stdout.count("✓") >= 12
        assert f"✓ user {reps[1]} exists and is active" in checked.stdout
        assert f"✓ user {srv.world.queue_id} exists and is active" in checked.stdout  # the fallback owner

        synced = cli("sync", "--once")
        assert synced.exit_code == 0, synced.output

        rep = _client(info, rep_email, info["salesforce"]["rep_password"])
        rows = rep.query_all("SELECT Id, LeadPilot_Score__c, LeadPilot_Grade__c, LeadPilot_Reasons__c FROM Lead "
                             "WHERE LeadPilot_Score__c != null")["records"]
        # open leads only: closed ones (converted or disqualified) are not rewritten
        open_ids = {lead["Id"] for lead in srv.store.all("Lead") if not str(lead["Status"]).startswith("Closed")}
        assert open_ids and {r["Id"] for r in rows} == open_ids
        assert all(r["LeadPilot_Grade__c"] and r["LeadPilot_Reasons__c"] for r in rows)

        writes = sum(n for k, n in srv.ctx.counters.items() if k.startswith(("salesforce POST /services/data",
                                                                             "salesforce PATCH")))
        again = cli("init-crm")
        assert again.exit_code == 0 and "nothing changed" in again.stdout
        assert sum(n for k, n in srv.ctx.counters.items() if k.startswith(("salesforce POST /services/data",
                                                                          "salesforce PATCH"))) == writes

        admin = _client(info, info["salesforce"]["username"], info["salesforce"]["password"])
        ps = admin.query("SELECT Id FROM PermissionSet WHERE Name = 'LeadPilot_Integration'")["records"][0]["Id"]
        grant = admin.query("SELECT Id FROM FieldPermissions WHERE Field = 'Lead.LeadPilot_Grade__c' AND "
                            f"ParentId = '{ps}'")
        assert grant["totalSize"] == 1
        admin.FieldPermissions.delete(grant["records"][0]["Id"])
        broken = cli("check")
        assert broken.exit_code == 2
        assert "✗ field Lead.LeadPilot_Grade__c editable — exists but the integration user has no access" \
            in broken.stdout
        assert info["salesforce"]["password"] not in broken.output
