"""``init-crm`` without a routing file: every user the sync routes to can read the scores.

Without ``routing.toml`` leads go to every active CRM user (``routed_reps``); the reps' permission
set must reach the same users, or they would own leads whose score, grade and reasons they cannot
see (field-level security hides the fields from a user without a grant).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sandbox.server import SandboxServer
from sync.cli import app

pytestmark = pytest.mark.integration


def test_given_no_routing_file_when_init_crm_then_every_rep_the_sync_routes_to_gets_the_reps_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env, no routing.toml
    with SandboxServer(seed=5, leads=0) as srv:
        sf = srv.info["salesforce"]
        env = {"LEADPILOT_CRM": "salesforce", "LEADPILOT_SALESFORCE__AUTH__KIND": "password",
               "LEADPILOT_SALESFORCE__AUTH__USERNAME": sf["username"],
               "LEADPILOT_SALESFORCE__AUTH__PASSWORD": sf["password"],
               "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": sf["client_id"],
               "LEADPILOT_SALESFORCE__AUTH__CONSUMER_SECRET": sf["client_secret"],
               "LEADPILOT_SALESFORCE__LOGIN_URL": sf["instance_url"],
               "LEADPILOT_SALESFORCE__CA_BUNDLE": srv.info["ca_cert"],
               "LEADPILOT_STATE_DIR": str(tmp_path / "state"), "LEADPILOT_METRICS_PORT": "0"}
        result = CliRunner().invoke(app, ["init-crm"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output

        assigned = {line.removeprefix("  - assign LeadPilot_Reps to ") for line in result.stdout.splitlines()
                    if line.startswith("  - assign LeadPilot_Reps to ")}
        active_reps = {srv.store.get("User", uid)["Name"] for uid in srv.world.reps}
        assert assigned == active_reps  # the 8 active reps: not the integration user, the queue, the former rep
        holders = {a["AssigneeId"] for a in srv.store.all("PermissionSetAssignment")
                   if srv.store.get("PermissionSet", a["PermissionSetId"])["Name"] == "LeadPilot_Reps"}
        assert holders == set(srv.world.reps)
