"""``leadpilot demo`` end to end on a short run: the JSON contract, the counterfactual and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONTRACT = ("leads", "scored", "assigned", "conversions", "conversions_round_robin_counterfactual",
            "api_calls_per_1000_leads", "roc_auc", "report", "queued", "exclusions", "speed_to_lead_seconds")


def test_given_a_fresh_machine_when_demo_runs_then_summary_json_and_report_are_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "summary.json"

    result = CliRunner().invoke(app, ["demo", "--crm", "hubspot", "--days", "4", "--leads", "300", "--seed", "2",
                                      "--out", str(tmp_path / "demo"), "--json", str(out)], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert all(k in summary for k in CONTRACT), sorted(summary)
    assert summary["crm"] == "hubspot" and summary["days"] == 4 and summary["parked"] == 0
    assert 0 < summary["assigned"] <= summary["leads"] and summary["scored"] >= summary["assigned"]
    assert sum(summary["assignments_per_rep"].values()) == summary["assigned"]
    # the demo's routing file: two teams by territory and hours, so leads queue at the other
    # team's sync and drain at their own; every exclusion counted by reason
    assert summary["queued"] > 0 and summary["queued_at_end"] <= summary["queued"]
    assert summary["exclusions"]["outside territory"] > 0 and summary["exclusions"]["outside working hours"] > 0
    speed = summary["speed_to_lead_seconds"]
    assert set(speed) == {"p50", "p95"} and 0 < speed["p50"] <= speed["p95"]
    # Expected conversions: ours and round robin's from the same ground truth, bounded by the oracle's.
    assert summary["expected_conversions_round_robin"] <= summary["expected_conversions_oracle"]
    assert summary["expected_conversions"] <= summary["expected_conversions_oracle"]
    assert 0 < summary["api_calls_per_1000_leads"] < 1000
    assert summary["model"] != "cold start"  # the first model was trained from the history
    assert summary["roc_auc"] is None or 0 <= summary["roc_auc"] <= 1
    html = Path(summary["report"]).read_text(encoding="utf-8")
    assert "leadpilot demo" in html and html.count("<svg") + html.count("<img") >= 4
    assert "speed to lead p50 / p95 (s)" in html and "queued" in html
    assert "summary" in result.output or "conversions" in result.output
