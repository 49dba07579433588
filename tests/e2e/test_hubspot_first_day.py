"""Day one on a HubSpot portal, through ``leadpilot``'s command line against the sandbox over HTTPS.

A Service Key lacking one scope: ``init-crm --dry-run`` says what it would create and creates
nothing, ``init-crm`` creates the properties, ``check`` exits 2 naming
the scope. The admin adds the scope (a key holding every needed scope): ``check`` is all ✓,
``sync --once`` scores and writes, and ``init-crm`` again changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox.hubspot.api import state as state_of
from sandbox.hubspot.auth import ALL_SCOPES, add_token
from sandbox.hubspot.props import hs_id
from sandbox.server import SandboxServer
from sync.cli import app

pytestmark = [pytest.mark.integration]

NEEDED = ["crm.objects.contacts.read", "crm.objects.contacts.write", "crm.schemas.contacts.read",
          "crm.schemas.contacts.write", "crm.objects.owners.read", "crm.objects.deals.read"]


def test_given_a_service_key_lacking_a_scope_then_check_names_it_and_with_it_check_passes_and_sync_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()
    with SandboxServer(seed=31, leads=120) as srv:
        assert set(NEEDED) <= set(ALL_SCOPES)
        lacking = add_token(srv.ctx, {"kind": "service_key",
                                      "scopes": [s for s in NEEDED if s != "crm.objects.contacts.write"]})["token"]
        full = add_token(srv.ctx, {"kind": "service_key", "scopes": NEEDED})["token"]
        people = [u for u in srv.store.all("User") if u.get("IsActive") and u.get("UserType") != "Queue"
                  and u["Username"] != srv.ctx.credentials.username]
        queue = next(u for u in srv.store.all("User") if u.get("UserType") == "Queue")
        state = tmp_path / "state"
        state.mkdir()
        routing = state / "routing.toml"
        reps = "".join(f'[[reps]]\nid = "{hs_id(u["Id"])}"\n' for u in people[:3])
        routing.write_text(f'unlisted_reps = "ignore"\n[fallback]\nowner = "{hs_id(queue["Id"])}"\n{reps}',
                           encoding="utf-8")

        def cli(token: str, *args: str) -> Any:
            env = {"LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": token,
                   "LEADPILOT_HUBSPOT__HOST": srv.info["hubspot"]["host"],
                   "LEADPILOT_HUBSPOT__CA_BUNDLE": srv.info["ca_bundle"], "LEADPILOT_STATE_DIR": str(state),
                   "LEADPILOT_METRICS_PORT": "0", "LEADPILOT_ROUTING__FILE": str(routing),
                   "LEADPILOT_LOG_LEVEL": "WARNING"}
            return runner.invoke(app, list(args), env=env, catch_exceptions=False)

        dry = cli(lacking, "init-crm", "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "would create property leadpilot_score on contacts" in dry.stdout
        assert not state_of(srv.ctx).prop_meta and not state_of(srv.ctx).groups.get("contacts", {}).get("leadpilot")

        made = cli(lacking, "init-crm")
        assert made.exit_code == 0, made.output
        assert "property group leadpilot" in made.stdout and "leadpilot_scored_at" in made.stdout

        check = cli(lacking, "check")
        assert check.exit_code == 2, check.output
        failed = [line for line in check.stdout.splitlines() if line.strip().startswith("✗")]
        assert failed == ["  ✗ scope crm.objects.contacts.write — missing: needed to write scores, grades, "
                          "reasons and owners back"]
        assert "fix: add the scope crm.objects.contacts.write to the Service Key" in check.stdout
        assert lacking not in check.output

        ok = cli(full, "check")
        assert ok.exit_code == 0, ok.output
        assert "✗" not in ok.stdout and ok.stdout.count("✓") >= 15
        assert f"✓ owner {hs_id(queue['Id'])} exists and is active — " in ok.stdout
        assert "✓ access token accepted" in ok.stdout and "✓ scope crm.objects.contacts.write" in ok.stdout

        sync = cli(full, "sync", "--once", "--json")
        assert sync.exit_code == 0, sync.output
        cycle = json.loads(sync.stdout)
        assert cycle["error"] is None and cycle["scored"] > 0 and cycle["parked"] == 0
        written = [r for r in srv.store.all("Lead") if r.get("leadpilot_score") is not None]
        assert len(written) == cycle["scored"]
        assert {r["leadpilot_grade"] for r in written} <= {"A", "B", "C", "D"}

        again = cli(full, "init-crm")
        assert again.exit_code == 0 and "nothing changed" in again.stdout
