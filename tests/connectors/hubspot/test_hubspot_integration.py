"""hubspot-api-client over HTTPS against the sandbox: pulls, writes, faults, outcomes.

Time is the fake clock of ``conftest`` (retries and pacing never really sleep).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import CRMError, Kind, StopCycle
from connectors.records import LeadUpdate
from sandbox.context import Faults
from sandbox.hubspot.props import hs_id

pytestmark = pytest.mark.integration


def score_all(leads: list[Any], version: str = "m1") -> list[LeadUpdate]:
    return [LeadUpdate(x.id, score=int(x.id) % 100, grade="B", opportunity=int(x.id) % 2 == 0,
                       reasons=f"reason for {x.id}", model_version=version) for x in leads]


def hs_calls(server: Any, fragment: str) -> int:
    return sum(n for k, n in server.ctx.counters.items() if k.startswith("hubspot") and fragment in k)


def test_given_a_fresh_portal_when_first_sync_then_every_contact_once_at_the_page_floor(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=1, leads=450)
    c = make(server, "hubspot")
    leads = list(c.iter_changed_leads(None))
    assert len(leads) == len({x.id for x in leads}) == 450
    assert c.api_usage()["read"] == 3 == hs_calls(server, "/search")  # ⌈450/200⌉ pages
    assert all(x.text and x.modified_at for x in leads)
    assert [x.modified_at for x in leads] == sorted(x.modified_at for x in leads)


def test_given_ensure_fields_twice_then_second_run_creates_nothing(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=1, leads=5)
    c = make(server, "hubspot")
    assert not c.check().ok
    props = ["leadpilot_score", "leadpilot_grade", "leadpilot_opportunity", "leadpilot_reasons",
             "leadpilot_model_version", "leadpilot_scored_at", "leadpilot_routing_reason"]
    before = dict(server.ctx.counters)
    assert c.init_crm(dry_run=True) == ["would create property group leadpilot",
                                        *(f"would create property {n} on contacts" for n in props)]
    assert c.ensure_fields(dry_run=True) == ["property group leadpilot", *props]  # what it would do…
    assert not any(k.startswith("hubspot POST") for k in set(server.ctx.counters) - set(before))  # …and wrote nothing
    assert c.ensure_fields() == ["property group leadpilot", *props]
    assert c.ensure_fields() == [] and c.ensure_fields(dry_run=True) == [] and c.check().ok
    assert c.init_crm(dry_run=True) == [] and c.init_crm() == []  # what `init-crm` calls: nothing to change
    defs = {p.name: p for p in c.apis.get("properties").get_all("contacts").results}
    assert all(defs[n].group_name == "leadpilot" and len(defs[n].description) > 20 for n in props)
    assert [o.value for o in defs["leadpilot_grade"].options] == ["A", "B", "C", "D"]
    assert defs["leadpilot_grade"].type == "enumeration" and defs["leadpilot_grade"].field_type == "select"
    assert {o.value for o in defs["leadpilot_opportunity"].options} == {"true", "false"}


def test_given_properties_from_an_older_setup_when_init_crm_then_descriptions_and_options_completed_once(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=1, leads=5)
    c = make(server, "hubspot")
    props = c.apis.get("properties")
    c.apis.get("groups").create("contacts", {"name": "leadpilot", "label": "LeadPilot"})
    for name, ptype, ftype in [("leadpilot_score", "number", "number"), ("leadpilot_grade", "enumeration", "select"),
                               ("leadpilot_reasons", "string", "textarea")]:  # as created before: bare
        props.create("contacts", {"name": name, "label": name, "type": ptype, "fieldType": ftype,
                                  "groupName": "leadpilot"})
    plan = c.init_crm(dry_run=True)
    assert "would complete property leadpilot_grade on contacts: description and options" in plan
    assert "would complete property leadpilot_score on contacts: description" in plan
    assert not props.get_by_name("contacts", "leadpilot_score").description  # a dry run changes nothing
    done = c.init_crm()
    assert [x.replace("would create", "created").replace("would complete", "completed") for x in plan] == done
    grade = props.get_by_name("contacts", "leadpilot_grade")
    assert [o.value for o in grade.options] == ["A", "B", "C", "D"] and "band" in grade.description
    assert c.init_crm() == [] and c.init_crm(dry_run=True) == []


def test_given_written_scores_when_pulling_again_then_our_own_writes_are_recognised(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=2, leads=300)
    c = make(server, "hubspot")
    c.ensure_fields()
    start = server.store.clock.now()
    first = {x.id: x for x in c.iter_changed_leads(None)}
    report = c.write(score_all(list(first.values())))
    assert len(report.succeeded) == 300 and report.api_calls == 3  # ⌈300/100⌉ batch updates
    echoes = list(c.iter_changed_leads(start))
    assert {x.id for x in echoes} == set(first)  # our writes bumped lastmodifieddate…
    assert all(x.input_hash == first[x.id].input_hash for x in echoes)  # …but changed no scoring input
    assert all(x.written["score"] == str(int(x.id) % 100) for x in echoes)
    assert all(x.modified_at > first[x.id].modified_at for x in echoes)


def test_given_new_and_changed_contacts_when_syncing_incrementally_then_overlap_is_deduplicated(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=3, leads=200)
    c = make(server, "hubspot")
    seen = {x.id: x.modified_at for x in c.iter_changed_leads(None)}
    mark = server.store.clock.now()
    server.advance(2)  # leads arrive, reps work old ones
    changed = list(c.iter_changed_leads(mark))
    assert len(changed) == len({(x.id, x.modified_at) for x in changed})
    new = [x for x in changed if x.id not in seen]
    store_new = [r for r in server.store.all("Lead") if r["CreatedDate"] > mark]
    assert {x.id for x in new} == {hs_id(r["Id"]) for r in store_new} and new
    # overlap: records modified in the lookback before the mark come again, none is lost
    after_mark = {hs_id(r["Id"]) for r in server.store.all("Lead") if r["SystemModstamp"] >= mark}
    assert after_mark <= {x.id for x in changed}
    assert {x.id for x in c.iter_changed_leads(mark, overlap=False)} == after_mark


@pytest.mark.slow
def test_given_more_than_10000_changed_contacts_when_pulling_then_rewindowed_without_loss(
        sandbox_factory: Any, make: Any, small_search_cap: int) -> None:
    # the cap at 1,000 (both sides): 1,450 contacts take the path 10,450 take under the real cap
    server = sandbox_factory(seed=4, leads=small_search_cap + 450)
    c = make(server, "hubspot")
    leads = list(c.iter_changed_leads(None))
    assert len({x.id for x in leads}) == len(server.store.all("Lead")) == 1_450
    assert len(leads) == 1_450  # edge re-reads are de-duplicated
    assert c.api_usage()["read"] <= 9  # ⌈1450/200⌉ = 8, plus at most one re-windowed page


def test_given_a_429_storm_and_5xx_when_syncing_then_retried_and_nothing_lost_or_written_twice(
        sandbox_factory: Any, make: Any, clock: Any) -> None:
    server = sandbox_factory(seed=5, leads=400, faults=Faults(p_429=0.3, p_5xx=0.15))
    c = make(server, "hubspot")
    c.ensure_fields()
    leads = list(c.iter_changed_leads(None))
    assert len({x.id for x in leads}) == 400
    report = c.write(score_all(leads))
    assert len(report.succeeded) == 400 and len(report.results) == 400
    assert c.retrier.retries > 0 and max(clock.sleeps) >= 1.0  # Retry-After honoured
    server.ctx.faults = Faults()
    assert all(x.written.get("score") == str(int(x.id) % 100) for x in c.iter_changed_leads(None))


def test_given_a_rotated_token_mid_pull_when_401_then_the_new_token_file_is_read(
        sandbox_factory: Any, make: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = sandbox_factory(seed=6, leads=500)
    token_file = tmp_path / "hubspot"
    token_file.write_text(server.info["hubspot"]["access_token"])
    monkeypatch.setenv("LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE", str(token_file))
    c = make(server, "hubspot")
    pulled = []
    for i, lead in enumerate(c.iter_changed_leads(None)):
        pulled.append(lead.id)
        if i == 250:  # the admin rotates the private-app token
            server.ctx.credentials.hubspot_token = "pat-na1-rotated"
            token_file.write_text("pat-na1-rotated")
    assert len(set(pulled)) == 500


def test_given_a_revoked_token_when_no_new_one_exists_then_a_config_error_says_what_to_do(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=6, leads=5)
    c = make(server, "hubspot")
    server.ctx.credentials.hubspot_token = "pat-na1-other"
    with pytest.raises(CRMError, match="invalid, expired or revoked") as info:
        list(c.iter_changed_leads(None))
    msg = str(info.value)
    assert info.value.kind is Kind.CONFIG and "pat-na1" not in msg
    assert "lacks a permission" not in msg and "Service Key" in msg and "LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE" in msg


def test_given_bad_records_in_a_batch_when_writing_then_per_lead_results_with_the_crm_message(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=7, leads=150)
    c = make(server, "hubspot")
    c.ensure_fields()
    leads = list(c.iter_changed_leads(None))
    updates = score_all(leads)
    updates[5] = LeadUpdate(leads[5].id, owner_id="999999")  # no such owner
    updates.append(LeadUpdate("987654321", score=1))  # no such contact
    report = c.write(updates)
    assert len(report.results) == 151 and len(report.succeeded) == 149
    failed = {r.lead_id: r for r in report.failed}
    assert not failed["987654321"].transient and failed["987654321"].error_code == "OBJECT_NOT_FOUND"
    assert failed[leads[5].id].error_code == "VALIDATION_ERROR" and failed[leads[5].id].message


def test_given_the_daily_limit_is_spent_when_syncing_then_stop_cycle_says_when_to_resume(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=8, leads=600, faults=Faults(hs_daily_limit=2))
    c = make(server, "hubspot")
    with pytest.raises(StopCycle) as info:
        list(c.iter_changed_leads(None))
    err = info.value
    assert err.code == "DAILY" and err.resume_at is not None and "resume after" in str(err)
    assert hs_calls(server, "/search") == 3  # no spinning: the refused call is not retried


def test_given_closed_deals_when_reading_outcomes_then_linked_to_their_contacts(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=9, leads=400)
    c = make(server, "hubspot")
    outcomes = list(c.iter_outcomes(None))
    closed = [o for o in server.store.all("Opportunity") if o["IsClosed"]]
    assert len(outcomes) == len(closed) > 0
    truth = {hs_id(o["Id"]): (hs_id(server.store.opportunity_lead[o["Id"]]), bool(o["IsWon"])) for o in closed}
    assert {o.opportunity_id: (o.lead_id, o.won) for o in outcomes} == truth
    mark = server.store.clock.now()
    server.advance(30)
    later = list(c.iter_outcomes(mark))
    assert all(o.closed_at.date() >= (mark - timedelta(days=1)).date() for o in later)


def test_given_a_tight_burst_limit_when_syncing_then_paced_instead_of_refused(
        sandbox_factory: Any, make: Any, clock: Any) -> None:
    from sandbox.hubspot.api import state

    server = sandbox_factory(seed=10, leads=600, faults=Faults(hs_burst_limit=4))
    state(server.ctx).monotonic = clock.monotonic  # the sandbox's window runs on the same fake time
    c = make(server, "hubspot")
    c.pacer.max_calls = 4
    leads = list(c.iter_changed_leads(None))
    c.write(score_all(leads))
    assert len({x.id for x in leads}) == 600
    assert c.pacer.waited > 0 and c.retrier.retries == 0  # no 429 was needed


def test_given_history_when_labelling_then_converted_and_disqualified_are_known(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=11, leads=300)
    c = make(server, "hubspot")
    history = list(c.iter_history(label="converted"))
    converted = {hs_id(r["Id"]) for r in server.store.all("Lead") if r["IsConverted"]}
    assert {h.lead.id for h in history if h.converted} == converted
    lost = {hs_id(r["Id"]) for r in server.store.all("Lead") if r["Status"] == "Closed - Not Converted"}
    assert lost <= {h.lead.id for h in history if not h.converted}
    won = list(c.iter_history(label="won"))
    assert {h.lead.id for h in won if h.converted} <= converted


def test_given_reps_and_owner_checks_then_owners_come_back(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=12, leads=120)
    c = make(server, "hubspot")
    reps = c.list_reps()
    assert any(r.is_queue for r in reps) and sum(1 for r in reps if not r.is_queue) >= 3
    leads = list(c.iter_changed_leads(None))
    owners = c.get_owners([x.id for x in leads])
    assert owners == {x.id: x.owner_id for x in leads}
