"""Speed to lead counts only leads created since leadpilot started watching the org: the
backlog a first run routes (created long before) is left out of ``status``, the report, the
demo's JSON and the histogram alike (real sandbox, injected clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync.jobs.cycle import run_cycle
from sync.jobs.queue import WATCHING_STREAM, watching_since
from sync.ops.metrics import Metrics
from sync.ops.routing_view import speed_to_lead
from sync.ops.status import collect_status, report_data

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_a_backlog_routed_on_the_first_run_when_status_then_speed_to_lead_counts_only_new_leads(rig_factory, crm):
    rig = rig_factory(crm, arrivals_per_day=96)
    rig.deps.metrics = Metrics()
    first = rig.srv.store.clock.now()
    run_cycle(rig.deps)  # the first run: routes the history backlog
    since = watching_since(rig.deps.store)
    assert since is not None and abs((since - first).total_seconds()) < 1
    backlog = [a for a in rig.deps.store.assignments(effective=True) if a.rep_id and a.written_at]
    assert backlog and all(a.lead_created_at < since for a in backlog)
    assert rig.deps.metrics.value("leadpilot_speed_to_lead_seconds_count") == 0

    rig.srv.world.advance(timedelta(hours=2))
    run_cycle(rig.deps)
    assert rig.deps.store.get_watermark(WATCHING_STREAM) == since  # set once, by the first run
    new = [a for a in rig.deps.store.assignments(effective=True)
           if a.rep_id and a.written_at and a.lead_created_at >= since]
    assert len(new) >= 2
    expected = sorted((a.written_at - a.lead_created_at).total_seconds() for a in new)
    assert max(expected) <= 2 * 3600 + 1  # nobody waits longer than one sync interval here

    data = collect_status(rig.settings, rig.deps.store, rig.deps.connector, now=rig.srv.store.clock.now())
    speed = data["routing"]["speed_to_lead_seconds"]
    assert speed["leads"] == len(new) and speed["since"] == since.isoformat()
    assert speed["p95"] is not None and speed["p95"] <= 2 * 3600 + 1  # not the backlog's months
    assert sorted(speed_to_lead(rig.deps.store.assignments(effective=True), since)) == expected
    assert rig.deps.metrics.value("leadpilot_speed_to_lead_seconds_count") == len(new)
    report = report_data(rig.settings, rig.deps.store, rig.deps.connector, now=rig.srv.store.clock.now())
    label = "speed to lead p50 / p95 (s), leads created since leadpilot started"
    assert report.summary[label] == f"{speed['p50']:.0f} / {speed['p95']:.0f}"


def test_given_no_run_yet_when_measuring_speed_then_nothing_counts(rig_factory):
    rig = rig_factory("salesforce")
    assert watching_since(rig.deps.store) is None
    assert speed_to_lead(rig.deps.store.assignments(), None) == []
