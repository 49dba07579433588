"""``leadpilot explain`` through the real command line against the sandbox: for a queued and an
assigned lead, every rep considered is named as the CRM names it, with why each was left out;
``--lead-json`` answers for a hypothetical lead and records nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.config.settings import RoutingSettings
from sync.jobs.cycle import run_cycle
from sync.wiring.scorers import PriorScorer

pytestmark = pytest.mark.integration

ROUTING = """
[defaults]
timezone = "Europe/Berlin"
working_hours = "08:00-18:00"

[territories.americas]
country = ["US", "canada", "BRA"]

[territories.emea]
country = ["United Kingdom", "DEU", "France", "Netherlands"]

[[reps]]
email = "avery.chen@leadpilot.sandbox"
territory = "americas"
timezone = "America/New_York"
working_hours = "08:30-17:00"

[[reps]]
email = "blake.morgan@leadpilot.sandbox"
territory = "emea"

[[reps]]
email = "carmen.ruiz@leadpilot.sandbox"
out_of_office = ["2026-01-01..2026-01-31"]
"""
NAMES = ("Avery Chen", "Blake Morgan", "Carmen Ruiz")


def _env(crm: str, info: dict[str, Any], state: Path) -> dict[str, str]:
    env = {"LEADPILOT_CRM": crm, "LEADPILOT_STATE_DIR": str(state), "LEADPILOT_METRICS_PORT": "0",
           "LEADPILOT_ROUTING__FILE": str(state / "routing.toml"), "LEADPILOT_LOG_LEVEL": "WARNING"}
    if crm == "hubspot":
        env |= {"LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
                "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"]}
    else:
        sf = info["salesforce"]
        env |= {"LEADPILOT_SALESFORCE__AUTH__KIND": "password", "LEADPILOT_SALESFORCE__AUTH__USERNAME": sf["username"],
                "LEADPILOT_SALESFORCE__AUTH__PASSWORD": sf["password"],
                "LEADPILOT_SALESFORCE__AUTH__SECURITY_TOKEN": sf["security_token"],
                "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": sf["client_id"],
                "LEADPILOT_SALESFORCE__AUTH__CONSUMER_SECRET": sf["client_secret"],
                "LEADPILOT_SALESFORCE__LOGIN_URL": sf["instance_url"], "LEADPILOT_SALESFORCE__CA_BUNDLE": info["ca_bundle"]}
    return env


def _rep_column(text: str) -> set[str]:
    """Who the per-rep lines name (the text before "excluded:" / "eligible" / "chosen (")."""
    out = set()
    for line in text.splitlines():
        for marker in ("  excluded: ", "  eligible", "  chosen ("):
            if marker in line:
                out.add(line.split(marker)[0].strip())
    return out


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_queued_and_assigned_leads_when_explained_then_every_exclusion_in_words_with_rep_names(
        rig_factory, crm, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    rig = rig_factory(crm, arrivals_per_day=30)
    (rig.state_dir / "routing.toml").write_text(ROUTING, encoding="utf-8")
    rig.rebuild(routing=RoutingSettings(file=rig.state_dir / "routing.toml"))
    rig.srv.advance(14 / 24)  # Monday 23:00 UTC: nobody is working
    assert run_cycle(rig.deps).ok
    rig.srv.advance(16 / 24)  # Tuesday 15:00 UTC: New York and Berlin are
    assert run_cycle(rig.deps).ok
    decisions = rig.deps.store.assignments()
    queued = next(d for d in decisions if d.rep_id is None)
    assigned = next(d for d in decisions if d.rep_id is not None)
    rep_ids = set(queued.considered)
    assert len(rep_ids) == 3

    runner = CliRunner()
    env = _env(crm, rig.srv.info, rig.state_dir)

    def cli(*args: str) -> Any:
        result = runner.invoke(app, ["explain", *args], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    text = cli(queued.lead_id)
    assert f"lead {queued.lead_id}: 20% conversion probability, grade D (model prior)" in text
    written = PriorScorer(0.2).score([{}])[0].reasons  # what the rig's scorer wrote on the record
    assert f"reasons: {written}" in text
    assert "queued: none of the 3 reps could take it" in text
    lines = text.splitlines()
    for why in queued.considered.values():
        assert why  # every rep was excluded, and says why, by name
        assert any(n in line and f"excluded: {why}" in line for line in lines for n in NAMES), (why, text)
    assert "outside working hours (" in text and "out of office 2026-01-01 to 2026-01-31" in text
    assert _rep_column(text) == set(NAMES)  # names, never raw owner ids

    text = cli(assigned.lead_id)
    chosen = next(line for line in text.splitlines() if "chosen with probability" in line)
    assert any(n in chosen for n in NAMES) and f"{assigned.propensity:.3f}" in chosen
    assert "policy contextual v" in chosen
    assert "Carmen Ruiz" in text and "excluded: out of office 2026-01-01 to 2026-01-31" in text
    assert _rep_column(text) == set(NAMES)
    data = json.loads(cli(assigned.lead_id, "--json"))
    assert data["decisions"][-1]["rep"] == assigned.rep_id and data["decisions"][-1]["propensity"] == assigned.propensity

    # a hypothetical German lead on Tuesday at 10:00 UTC: only Blake (EMEA, in hours) can take it
    before = (len(rig.deps.store.assignments()), rig.deps.store.policy_versions(rig.deps.router.name),
              rig.deps.store.count_leads())
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps({"country": "Germany", "employees": 120, "title": "CTO", "company": "Acme"}), encoding="utf-8")
    text = cli("--lead-json", str(lead), "--at", "2026-01-06T10:00")
    assert "Blake Morgan chosen with probability 1.000 among 1 eligible of 3 reps" in text
    assert "Avery Chen" in text and "excluded: outside territory americas: country Germany not in (US, canada, BRA)" in text
    assert "(nothing was recorded or written)" in text
    data = json.loads(cli("--lead-json", str(lead), "--at", "2026-01-06T23:00", "--json"))
    assert data["queued"] is True and data["rep"] is None
    assert data["reps"]["Blake Morgan"]["excluded"].startswith("outside working hours (00:00 in Europe/Berlin")
    after = (len(rig.deps.store.assignments()), rig.deps.store.policy_versions(rig.deps.router.name),
             rig.deps.store.count_leads())
    assert after == before
