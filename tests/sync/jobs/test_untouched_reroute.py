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


OFFICE = """
[defaults]
timezone = "UTC"
working_hours = "09:00-17:00"
working_days = ["mon", "tue", "wed", "thu", "fri"]
""" + "".join(f'[[reps]]\nemail = "{n}@leadpilot.sandbox"\n'
              for n in ("avery.chen", "blake.morgan", "carmen.ruiz", "dmitri.volkov", "elena.rossi"))


def _office_rig(rig_factory, crm: str):
    """Reps who work 09:00-17:00 UTC Monday to Friday; leads routed on Friday 9 January at 16:00."""
    rig = rig_factory(crm, leads=120, arrivals_per_day=0)
    (rig.state_dir / "routing.toml").write_text(OFFICE, encoding="utf-8")
    rig.rebuild(routing=RoutingSettings(file=rig.state_dir / "routing.toml", untouched_reroute_hours=HOURS))
    rig.srv.world.advance(timedelta(days=4, hours=7))  # Monday 09:00 -> Friday 16:00
    assert rig.srv.store.clock.now().strftime("%a %H:%M") == "Fri 16:00"
    assert run_cycle(rig.deps).assigned > 0
    first = {a.lead_id: a for a in rig.deps.store.assignments(effective=True) if a.rep_id and a.written_at}
    return rig, first


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_a_lead_assigned_friday_16_when_the_weekend_passes_then_it_is_rerouted_monday_not_saturday(
        rig_factory, crm):
    rig, first = _office_rig(rig_factory, crm)
    assert _untouched_now(rig, first)

    for step in (timedelta(hours=20), timedelta(hours=24), timedelta(hours=23, minutes=59)):
        rig.srv.world.advance(step)  # Saturday 12:00, Sunday 12:00, Monday 11:59: 1 h on Friday, < 3 h on Monday
        assert run_cycle(rig.deps).untouched_rerouted == 0, rig.srv.store.clock.now()

    rig.srv.world.advance(timedelta(minutes=31))  # Monday 12:30: 1 h Friday + 3.5 h Monday
    expected = _untouched_now(rig, first)
    report = run_cycle(rig.deps)

    assert report.error is None and expected and report.untouched_rerouted == len(expected)
    rerouted = {a.lead_id: a for a in rig.deps.store.assignments(list(first)) if a.superseded_reason == REASON}
    assert set(rerouted) == expected
    effective = {a.lead_id: a for a in rig.deps.store.assignments(list(expected), effective=True)}
    for lid, old in rerouted.items():
        assert effective[lid].considered[old.rep_id] == f"left it untouched for {HOURS} working hours"
        assert rig.owners()[lid] == effective[lid].rep_id != old.rep_id


class _HumanActsAfterOurRead:
    """The real connector; right after leadpilot reads the due leads, a manager gives one of them
    to another rep in the CRM (the sandbox's record store), as a person could at that moment."""

    def __init__(self, connector, act) -> None:
        self._connector, self._act = connector, act

    def get_leads(self, ids):
        leads = self._connector.get_leads(ids)
        self._act(ids)
        return leads

    def __getattr__(self, name):
        return getattr(self._connector, name)


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_a_human_reassigns_a_due_lead_when_it_is_rerouted_then_the_humans_owner_stays(rig_factory, crm):
    rig, first = _office_rig(rig_factory, crm)
    rig.srv.world.advance(timedelta(days=2, hours=20, minutes=30))  # Monday 12:30
    due = sorted(_untouched_now(rig, first))
    assert len(due) >= 2
    taken = due[0]
    human = next(uid for uid, u in rig.srv.world.reps.items() if u.name == "Hiro Tanaka")  # not routed to
    canonical = next(r["Id"] for r in rig.srv.store.all("Lead") if rig.cid(r["Id"]) == taken)
    reads = []

    def act(ids):
        reads.append(list(ids))
        rig.srv.store.update("Lead", canonical, {"OwnerId": human})

    rig.deps.connector = _HumanActsAfterOurRead(rig.deps.connector, act)

    report = run_cycle(rig.deps)

    assert report.error is None and report.owner_conflicts == 1 and any(taken in ids for ids in reads)
    owners = rig.owners()
    assert owners[taken] == rig.cid(human)  # re-checked before overwriting: the human's choice stays
    log = rig.deps.store.assignments([taken])
    assert [a.superseded_reason for a in log] == [REASON, "owner set in the CRM before our write"]
    assert rig.deps.store.assignments([taken], effective=True) == []
    for lid in due[1:]:  # the others were re-routed and written
        new = rig.deps.store.assignments([lid], effective=True)[0]
        assert new.id != first[lid].id and owners[lid] == new.rep_id and new.written_at is not None
