"""``status`` and the report say what routing did, by rep name: assigned vs queued (size, oldest),
exclusions by reason, grade mix, speed to lead, load against max_open from the CRM's workload;
the report's routing chart says plainly when too few outcomes are closed (real sandbox)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sync.config.settings import RoutingSettings
from sync.jobs.cycle import run_cycle
from sync.ops.report import render_report
from sync.ops.status import collect_status, report_data

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_queued_and_assigned_leads_when_status_then_named_reps_queue_exclusions_and_speed(rig_factory, crm, tmp_path):
    rig = rig_factory(crm, arrivals_per_day=48)
    reps = {u.name: u.email for u in rig.srv.world.reps.values()}
    routing = Path(rig.state_dir) / "routing.toml"
    routing.parent.mkdir(parents=True, exist_ok=True)
    routing.write_text(f'''
[fallback]
owner = "{rig.queue}"
[defaults]
timezone = "UTC"
working_hours = "09:00-17:00"
[[reps]]
email = "{reps["Avery Chen"]}"
max_open = 400
[[reps]]
email = "{reps["Grace Okafor"]}"
working_hours = "09:00-12:00"
''', encoding="utf-8")
    rig.rebuild(routing=RoutingSettings(file=routing))
    run_cycle(rig.deps)  # the first run: the backlog, which speed to lead leaves out
    rig.srv.world.advance(timedelta(hours=5))  # Monday 14:00: Avery works, Grace has gone home
    run_cycle(rig.deps)
    rig.srv.world.advance(timedelta(hours=5))  # 19:00: nobody
    run_cycle(rig.deps)
    now = rig.srv.store.clock.now()

    data = collect_status(rig.settings, rig.deps.store, rig.deps.connector, now=now)

    r = data["routing"]
    queued = rig.deps.store.queued()
    assert r["assigned"] > 0 and r["queued"]["size"] == len(queued) > 0
    assert r["queued"]["oldest_seconds"] == round((now - queued[0].decided_at).total_seconds())
    assert r["exclusions"]["outside working hours"] >= len(queued) * 2
    assert sum(r["grade_mix"].values()) >= r["assigned"] and set(r["grade_mix"]) <= {"A", "B", "C", "D"}
    speed = r["speed_to_lead_seconds"]
    assert 0 < speed["leads"] < r["assigned"] and 0 <= speed["p50"] <= speed["p95"] <= 5 * 3600
    avery = r["load"]["Avery Chen"]
    crm_open = sum(1 for rec in rig.leads().values() if rig.cid(rec.get("OwnerId")) == avery["id"]
                   and not rec.get("IsConverted") and rec.get("Status") not in ("Closed - Not Converted", "Closed - Converted"))
    assert avery["max_open"] == 400 and avery["crm_open"] == crm_open and avery["full"] is False
    assert "Grace Okafor" in r["load"] and r["load"]["Grace Okafor"]["max_open"] is None
    assert "Avery Chen" in data["reps"] and data["reps"]["Avery Chen"]["id"] == avery["id"]
    assert r["fast_pass"]["idle_calls_per_day"] == 1440 and r["fast_pass"]["share_of_100k_daily_budget"] == 0.0144

    report = report_data(rig.settings, rig.deps.store, rig.deps.connector, now=now)
    assert report.summary["queued (fallback owner)"] == len(queued)
    assert "Avery Chen" in report.rep_assigned and report.rep_open["Avery Chen"] == crm_open
    assert report.policy_estimates == [] and report.notes[0].startswith("Too few closed outcomes yet")
    html = render_report(report, tmp_path).read_text(encoding="utf-8")
    assert "Too few closed outcomes yet" in html and "Per-rep load" in html


def test_given_enough_closed_outcomes_when_reporting_then_logged_policy_vs_round_robin_with_intervals_in_0_1(
        tmp_path, db_url):
    import random
    from datetime import UTC, datetime

    from sync.config.settings import Settings
    from sync.ops.status import policy_estimates
    from sync.store import Decision, Store

    store = Store.open(db_url, crm="salesforce")
    rng = random.Random(3)
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for i in range(200):
        rep = "r1" if rng.random() < 0.7 else "r2"
        store.record_decision(Decision(lead_id=f"L{i}", rep_id=rep, policy_name="contextual", policy_version=1,
                                       propensity=0.7 if rep == "r1" else 0.3, decided_at=t0 + timedelta(hours=i),
                                       considered={"r1": None, "r2": None}, context={"score": 0.3},
                                       probabilities={"r1": 0.7, "r2": 0.3}))
        store.mark_written([f"L{i}"], t0 + timedelta(hours=i, seconds=5))
        store.apply_outcome(f"L{i}", rng.random() < (0.3 if rep == "r1" else 0.1), t0 + timedelta(days=30))
    settings = Settings(_env_file=None, crm="sandbox", state_dir=tmp_path)  # type: ignore[call-arg]
    estimates, note = policy_estimates(settings, store)
    store.close()
    assert [e[0] for e in estimates] == ["leadpilot (contextual)", "round robin (doubly robust)"]
    assert all(0.0 <= low <= value <= high <= 1.0 for _, value, low, high in estimates)
    assert "evaluate-policy --policy round_robin" in note
