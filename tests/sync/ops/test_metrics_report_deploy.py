"""Metrics families, the HTML report and the systemd unit."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sync.ops.metrics import Metrics
from sync.ops.report import ReportData, gains_curve, reliability_table, render_report

ROOT = Path(__file__).resolve().parents[3]


def test_given_cycle_counts_when_observed_then_counters_and_gauges_follow() -> None:
    m = Metrics()
    m.observe_leads("hubspot", {"pulled": 10, "scored": 8, "parked": 1})
    m.observe_leads("hubspot", {"pulled": 5})
    m.observe_api("hubspot", {"read": 3, "write": 1, "meta": 0})
    m.observe_budget("hubspot", 249_990)
    m.observe_job("sync", 1.5, ok=True, finished_at=1_700_000_000.0)
    m.observe_job("sync", 0.5, ok=False, finished_at=1_700_000_100.0)
    assert m.value("leadpilot_leads_total", {"crm": "hubspot", "event": "pulled"}) == 15
    assert m.value("leadpilot_api_calls_total", {"crm": "hubspot", "kind": "read"}) == 3
    assert m.value("leadpilot_api_budget_remaining", {"crm": "hubspot", "window": "daily"}) == 249_990
    assert m.value("leadpilot_last_success_timestamp_seconds", {"job": "sync"}) == 1_700_000_000.0
    assert m.value("leadpilot_job_failures_total", {"job": "sync"}) == 1


def test_given_two_orgs_in_one_process_then_one_registry_labels_each_orgs_samples() -> None:
    from prometheus_client import generate_latest

    shared = Metrics()
    acme, globex = shared.for_org("acme"), shared.for_org("globex")
    acme.observe_leads("salesforce", {"scored": 3})
    globex.observe_leads("hubspot", {"scored": 5})
    globex.observe_queue(2, 60.0, 1)
    assert acme.value("leadpilot_leads_total", {"crm": "salesforce", "event": "scored"}) == 3
    assert globex.value("leadpilot_leads_total", {"crm": "hubspot", "event": "scored"}) == 5
    assert acme.value("leadpilot_leads_total", {"crm": "hubspot", "event": "scored"}) is None
    assert (acme.value("leadpilot_queue_size"), globex.value("leadpilot_queue_size")) == (0, 2)
    text = generate_latest(shared.registry).decode()
    assert 'leadpilot_leads_total{crm="hubspot",event="scored",org="globex"} 5.0' in text
    assert shared.value("leadpilot_speed_to_lead_seconds_count") == 0  # org "default", shown from the start


def test_given_known_probabilities_when_reliability_table_then_bins_hand_computed() -> None:
    rows = reliability_table([0, 1, 1, 0], [0.05, 0.15, 0.95, 0.99])
    assert [(r["bin"], r["n"]) for r in rows] == [(0, 1), (1, 1), (9, 2)]
    assert rows[2]["predicted"] == pytest.approx(0.97)
    assert rows[2]["observed"] == 0.5


def test_given_perfect_ranking_when_gains_then_all_captured_at_positive_share() -> None:
    x, g = gains_curve([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])
    assert list(x) == [0, 0.25, 0.5, 0.75, 1.0]
    assert list(g) == [0, 0.5, 1.0, 1.0, 1.0]


def test_given_report_data_when_rendered_then_self_contained_html_with_four_pictures(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = rng.random(300)
    y = (rng.random(300) < p).astype(int)
    path = render_report(
        ReportData(summary={"leads": 300, "roc_auc": 0.81234}, y_true=y, y_prob=p, days=[1, 2], conversions_learned=[1, 3],
                   conversions_round_robin=[1, 2], rep_assigned={"r1": 4, "r2": 6}, rep_open={"r1": 1}),
        tmp_path,
    )
    text = path.read_text()
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 4
    assert "0.8123" in text and "Reliability table" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_given_unit_file_when_systemd_analyze_verify_then_clean(tmp_path: Path) -> None:
    unit = (ROOT / "deploy" / "leadpilot.service").read_text()
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "EnvironmentFile=", "StateDirectory=",
                "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes"):
        assert key in unit
    # verify checks that ExecStart and EnvironmentFile exist: point them at real files here
    env = tmp_path / "leadpilot.env"
    env.write_text("LEADPILOT_CRM=sandbox\n")
    unit = unit.replace("/opt/leadpilot/.venv/bin/leadpilot", str(Path(sys.executable)))
    unit = unit.replace("/etc/leadpilot/leadpilot.env", str(env))
    target = tmp_path / "leadpilot.service"
    target.write_text(unit)
    res = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (res.stdout + res.stderr).splitlines() if "leadpilot.service" in line]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr
