"""The sync cycle end to end: real sandbox, real connector over HTTPS, real store; both CRMs."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from sync.jobs.cycle import run_cycle
from sync.store.records import Decision

CRMS = ("salesforce", "hubspot")

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("crm", CRMS)
def test_given_new_leads_in_the_queue_when_first_cycle_then_all_scored_and_queue_leads_assigned_once(rig_factory, crm):
    rig = rig_factory(crm)
    rig.srv.advance(1)  # a day of arrivals waits in the lead queue
    before = rig.owners()
    queued = {lid for lid, owner in before.items() if owner == rig.queue}
    assert len(queued) > 10

    report = run_cycle(rig.deps)

    assert report.ok and report.stopped is None
    leads = rig.leads()
    open_ = rig.open_lead_ids()
    assert report.scored == len(open_) == report.written and len(open_) < len(leads)
    # open leads are scored; closed ones (converted, disqualified) are read but never rewritten
    assert all((rig.score_of(r) is not None) == (lid in open_) for lid, r in leads.items())
    after = rig.owners()
    assert {lid for lid in queued if after[lid] in rig.reps} == queued
    # never taken away from a human owner
    assert all(after[lid] == owner for lid, owner in before.items() if lid not in queued)
    recorded = rig.deps.store.assignments()
    assert Counter(a.lead_id for a in recorded) == Counter(queued)
    assert all(a.written_at is not None and after[a.lead_id] == a.rep_id for a in recorded)
    assert rig.deps.store.get_watermark("leads") is not None


@pytest.mark.parametrize("crm", CRMS)
def test_given_a_synced_crm_when_cycles_repeat_then_only_changes_are_processed(rig_factory, crm):
    rig = rig_factory(crm)
    rig.srv.advance(1)
    run_cycle(rig.deps)
    run_cycle(rig.deps)  # our own write-backs come back once, recognised by their unchanged inputs

    quiet = run_cycle(rig.deps)
    assert (quiet.scored, quiet.written, quiet.assigned) == (0, 0, 0)
    assert quiet.api_calls.get("write", 0) == 0 and quiet.api_calls.get("read", 0) <= 2

    rig.srv.advance(1)
    busy = run_cycle(rig.deps)
    assert busy.assigned > 0 and busy.scored >= busy.assigned
    assert busy.scored < len(rig.leads())
    ids = [a.lead_id for a in rig.deps.store.assignments()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("crm", CRMS)
def test_given_dry_run_when_cycle_then_nothing_is_written_anywhere(rig_factory, crm):
    rig = rig_factory(crm, dry_run=True)
    rig.srv.advance(1)
    before = {lid: (r["SystemModstamp"], r.get("OwnerId")) for lid, r in rig.leads().items()}

    report = run_cycle(rig.deps)

    assert report.mode == "dry-run" and report.scored == len(rig.open_lead_ids()) and report.assigned > 0
    assert {lid: (r["SystemModstamp"], r.get("OwnerId")) for lid, r in rig.leads().items()} == before
    assert report.api_calls.get("write", 0) == 0
    store = rig.deps.store
    assert store.assignments() == [] and store.get_watermark("leads") is None
    assert store.load_policy_state(rig.deps.router.name) is None
    assert store.count_leads() == {}


@pytest.mark.parametrize("crm", CRMS)
def test_given_shadow_mode_when_cycle_then_scores_written_and_owners_only_recorded(rig_factory, crm):
    rig = rig_factory(crm, shadow=True)
    rig.srv.advance(1)
    before = rig.owners()

    report = run_cycle(rig.deps)

    assert report.mode == "shadow" and report.assigned > 0
    assert rig.owners() == before
    open_ = rig.open_lead_ids()  # once: a pull per lead would spend the CRM's burst limit
    assert all(rig.score_of(r) is not None for lid, r in rig.leads().items() if lid in open_)
    recorded = rig.deps.store.assignments()
    assert len(recorded) == report.assigned and all(a.shadow for a in recorded)
    assert rig.deps.store.load_policy_state(rig.deps.router.name) is None


@pytest.mark.parametrize("crm", CRMS)
def test_given_a_decision_recorded_before_a_crash_when_cycle_then_it_is_written_not_redecided(rig_factory, crm):
    rig = rig_factory(crm)
    rig.srv.advance(1)
    queued = sorted(lid for lid, owner in rig.owners().items() if owner == rig.queue)
    kept, taken = queued[0], queued[1]
    rep = sorted(rig.reps)[0]
    now = rig.deps.clock()
    for lid in (kept, taken):  # a previous process decided, then died before writing
        assert rig.deps.store.record_decision(Decision(lid, rep, "contextual", 1, 0.5, now))
    # meanwhile a human took one of the two leads in the CRM
    human = sorted(rig.reps)[1]
    canonical = next(r["Id"] for r in rig.srv.store.all("Lead") if rig.cid(r["Id"]) == taken)
    rig.srv.store.update("Lead", canonical, {"OwnerId": next(u for u in rig.srv.world.reps if rig.cid(u) == human)})

    report = run_cycle(rig.deps)

    owners = rig.owners()
    assert owners[kept] == rep  # the recorded decision, not a new one
    assert owners[taken] == human  # re-checked before overwriting: the human keeps it
    assert report.owner_conflicts == 1
    decisions = {a.lead_id: a for a in rig.deps.store.assignments([kept, taken])}
    assert decisions[kept].written_at is not None and decisions[taken].written_at is None
    assert len(rig.deps.store.assignments()) == report.assigned + 2


def test_given_locked_rows_when_cycle_then_leads_are_parked_and_retried_after_backoff(rig_factory):
    rig = rig_factory("salesforce", leads=120)
    rig.srv.advance(1)
    rig.srv.ctx.faults.p_lock_row = 1.0  # every record of every collection: UNABLE_TO_LOCK_ROW

    first = run_cycle(rig.deps)

    parked = rig.deps.store.list_parked()
    open_ = rig.open_lead_ids()  # closed leads are not written, so not parked either
    assert first.parked == len(open_) == len(parked)
    assert all("UNABLE_TO_LOCK_ROW" in (p.last_error or "") for p in parked)
    # parked leads are retried from their own list: they do not hold the watermark back
    assert first.watermark_after is not None and first.watermark_after >= max(  # (the CRM sends milliseconds)
        r["SystemModstamp"] for r in rig.leads().values() if r["SystemModstamp"] <= first.started_at
    ) - timedelta(milliseconds=1)

    rig.srv.ctx.faults.p_lock_row = 0.0
    early = run_cycle(rig.deps)  # backoff not over: nothing retried yet
    assert early.written == 0
    rig.srv.store.clock.advance(timedelta(minutes=10))
    retried = run_cycle(rig.deps)
    assert retried.retried == len(parked)  # fetched by id (the pull no longer returns them)
    assert retried.written == len(open_)
    assert rig.deps.store.list_parked() == []
    assert all(rig.score_of(r) is not None for lid, r in rig.leads().items() if lid in open_)
    ids = [a.lead_id for a in rig.deps.store.assignments()]
    assert len(ids) == len(set(ids)) and all(rig.owners()[i] in rig.reps for i in ids)
