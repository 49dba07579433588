"""SLA re-routing of untouched leads against the sandbox, with the real clients on both
dialects and the simulated clock: a lead its rep has not touched N hours after the owner
write goes once to another rep; one with an activity logged (the sandbox admin API) or a
changed status stays; the first decision is a loss only when the admin says so."""

from __future__ import annotations

import http.client
import json
import ssl
from datetime import timedelta

import pytest

from sync.config.settings import RoutingSettings
from sync.jobs.cycle import run_cycle
from sync.jobs.untouched import REASON

pytestmark = pytest.mark.integration

HOURS = 4


def _log_activity(rig, lead_id: str) -> None:
    """A rep logs a call on the lead, through the sandbox's admin API."""
    srv = rig.srv
    tls = ssl.create_default_context(cafile=srv.info["ca_cert"])
    conn = http.client.HTTPSConnection("127.0.0.1", int(srv.base_url.rsplit(":", 1)[1]), context=tls, timeout=30)
    conn.request("POST", f"/_sandbox/leads/{lead_id}/activity")
    resp = conn.getresponse()
    assert resp.status == 200, json.loads(resp.read())
    conn.close()


def _untouched_now(rig, written) -> set[str]:
    """Ours, still with their first rep, open, no activity since the write (Salesforce keeps a
    date only: any activity that day counts), status still the new lead's: from the records."""
    out = set()
    for lid, rec in rig.leads().items():
        a = written.get(lid)
        if a is None or rig.cid(rec.get("OwnerId")) != a.rep_id or rec.get("IsConverted"):
            continue
        act = rec.get("_activity_at")
        touched = act is not None and (act >= a.written_at if rig.crm == "hubspot"
                                       else act.date() >= a.written_at.date())
        if not touched and rec.get("Status") == "Open - Not Contacted":
            out.add(lid)
    return out


@pytest.mark.parametrize(("crm", "as_loss"), [("salesforce", False), ("hubspot", False),
                                              ("salesforce", True), ("hubspot", True)])
def test_given_untouched_leads_when_the_sla_passes_then_each_is_rerouted_once_and_touched_ones_stay(
        rig_factory, crm, as_loss):
    rig = rig_factory(crm, arrivals_per_day=96)
    rig.rebuild(routing=RoutingSettings(untouched_reroute_hours=HOURS, untouched_counts_as_loss=as_loss))
    rig.srv.world.advance(timedelta(hours=3))
    run_cycle(rig.deps)  # the backlog and the leads that arrived meanwhile get their reps
    rig.srv.world.arrivals_per_day = 0
    now = rig.srv.store.clock.now()
    first = {a.lead_id: a for a in rig.deps.store.assignments(effective=True) if a.rep_id and a.written_at}
    assert all(now - a.written_at < timedelta(hours=HOURS - 1) for a in first.values())
    candidates = sorted(_untouched_now(rig, first))
    assert len(candidates) >= 4
    by_activity, by_status = candidates[0], candidates[1]
    _log_activity(rig, by_activity)  # a call logged: touched, status unchanged
    canonical = {rig.cid(r["Id"]): r["Id"] for r in rig.srv.store.all("Lead")}
    rig.srv.store.update("Lead", canonical[by_status], {"Status": "Working - Contacted"})  # worked, no activity

    rig.srv.world.advance(timedelta(hours=HOURS - 1))
    assert run_cycle(rig.deps).untouched_rerouted == 0  # not yet due

    rig.srv.world.advance(timedelta(hours=2))
    expected = _untouched_now(rig, first)
    assert by_activity not in expected and by_status not in expected and expected
    report = run_cycle(rig.deps)
    assert report.error is None and report.untouched_rerouted == len(expected)

    log = rig.deps.store.assignments(list(first))
    rerouted = {a.lead_id for a in log if a.superseded_reason == REASON}
    assert rerouted == expected
    effective = {a.lead_id: a for a in rig.deps.store.assignments(list(first), effective=True)}
    owners = rig.owners()
    state = rig.deps.router.router.ledger
    for lid in expected:
        old = next(a for a in log if a.lead_id == lid and a.superseded_reason == REASON)
        new = effective[lid]
        assert old.id == first[lid].id and new.id != old.id and new.rep_id != old.rep_id
        assert new.considered[old.rep_id] == f"left it untouched for {HOURS} h"
        assert new.written_at is not None and owners[lid] == rig.deps.router.owner_for(new.rep_id)
        if as_loss:
            assert old.outcome == "lost" and old.reward_applied_at is not None
            assert f"{lid}#untouched" in state.row
        else:
            assert old.outcome is None and f"{lid}#untouched" not in state.row
        assert new.outcome is None  # the reward belongs to the second decision
    for lid in (by_activity, by_status):
        assert effective[lid].id == first[lid].id and owners[lid] == rig.deps.router.owner_for(first[lid].rep_id)

    rig.srv.world.advance(timedelta(hours=HOURS + 1))
    assert run_cycle(rig.deps).error is None
    again = {a.lead_id: a for a in rig.deps.store.assignments(list(expected), effective=True)}
    assert all(again[lid].id == effective[lid].id for lid in expected)  # once: the second rep keeps it
    log = rig.deps.store.assignments(list(expected))
    assert all(sum(a.lead_id == lid and a.superseded_reason == REASON for a in log) == 1 for lid in expected)


def test_given_the_setting_off_when_leads_stay_untouched_then_nothing_is_rerouted(rig_factory):
    rig = rig_factory("salesforce", arrivals_per_day=0)
    assert rig.settings.routing.untouched_reroute_hours == 0  # off by default
    run_cycle(rig.deps)
    rig.srv.world.advance(timedelta(hours=30))
    report = run_cycle(rig.deps)
    assert report.untouched_rerouted == 0
    assert not any(a.superseded_reason == REASON for a in rig.deps.store.assignments())
