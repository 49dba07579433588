"""The admin's scenario against the sandbox: five reps, territories by country name and ISO
code, working hours, one rep out of office, an ordered rule. Every lead goes only to a rep the
routing file allows (checked here from the file's intent, not with the router's own code), and
every rep left out says why in words."""

from __future__ import annotations

import pytest

from sync.jobs.cycle import run_cycle

pytestmark = pytest.mark.integration

# The sandbox world's countries as the test reads them (independent of pycountry).
AMERICAS = {"United States", "Canada", "Brazil"}
EMEA = {"United Kingdom", "Germany", "France", "Netherlands"}
APAC = {"China", "Singapore", "India", "Australia", "Japan"}

ROUTING = """
[defaults]
timezone = "Europe/Berlin"
working_hours = "08:00-18:00"

[territories.americas]
country = ["united states", "CA", "BRA"]          # a name, an alpha-2 and an alpha-3 code

[territories.emea]
country = ["GB", "Germany", "FRANCE", "nl"]

[territories.apac]
country = ["China", "SG", "IN", "Australia", "JPN"]

[[rules]]
name = "enterprise"
when = { employees = { min = 1000 } }
teams = ["enterprise"]

[[reps]]
email = "avery.chen@leadpilot.sandbox"
territory = "americas"
teams = ["enterprise"]
timezone = "America/New_York"
working_hours = "08:30-17:00"

[[reps]]
email = "blake.morgan@leadpilot.sandbox"
territory = "emea"

[[reps]]
email = "carmen.ruiz@leadpilot.sandbox"
territory = "apac"
out_of_office = ["2026-01-01..2026-01-31"]

[[reps]]
email = "dmitri.volkov@leadpilot.sandbox"
territories = ["apac", "emea"]
teams = ["enterprise"]
timezone = "Asia/Singapore"
working_hours = "09:00-18:00"

[[reps]]
email = "elena.rossi@leadpilot.sandbox"           # no territory: any lead
"""
NAMES = {"avery.chen": "Avery", "blake.morgan": "Blake", "carmen.ruiz": "Carmen", "dmitri.volkov": "Dmitri",
         "elena.rossi": "Elena"}
COUNTRIES = {"Avery": AMERICAS, "Blake": EMEA, "Carmen": APAC, "Dmitri": APAC | EMEA, "Elena": None}
ENTERPRISE = {"Avery", "Dmitri"}
# Local working hours in UTC on the scenario's January days (no daylight saving in January).
HOURS_UTC = {"Avery": (13.5, 22.0), "Blake": (7.0, 17.0), "Dmitri": (1.0, 10.0), "Elena": (7.0, 17.0)}


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_the_admins_routing_file_when_leads_arrive_then_each_goes_only_to_an_eligible_rep(rig_factory, crm):
    rig = rig_factory(crm, arrivals_per_day=40)
    (rig.state_dir / "routing.toml").write_text(ROUTING, encoding="utf-8")
    from sync.config.settings import RoutingSettings

    rig.rebuild(routing=RoutingSettings(file=rig.state_dir / "routing.toml"))
    users = {str(rig.cid(r["Id"])): r for r in rig.srv.store.all("User")}
    name_of = {uid: NAMES[u["Email"].split("@")[0]] for uid, u in users.items() if u["Email"].split("@")[0] in NAMES}

    seen_hours: set[int] = set()
    for _ in range(6):  # cycles at different times of day: reps come in and out of hours
        rig.srv.advance(0.25)
        seen_hours.add(rig.srv.store.clock.now().hour)
        assert run_cycle(rig.deps).ok

    leads = rig.leads()
    decisions = rig.deps.store.assignments()
    assert len(decisions) > 20 and len(seen_hours) >= 4
    routed = 0
    for d in decisions:
        lead = leads[d.lead_id]
        country, employees = lead["Country"], float(lead.get("NumberOfEmployees") or 0)
        at = d.decided_at.hour + d.decided_at.minute / 60
        assert set(d.considered) == set(name_of)  # five reps considered, nobody else
        for uid, why in d.considered.items():
            rep = name_of[uid]
            allowed = COUNTRIES[rep] is None or country in COUNTRIES[rep]
            in_rule = employees < 1000 or rep in ENTERPRISE
            start, end = HOURS_UTC.get(rep, (0.0, 0.0))
            available = rep != "Carmen" and start <= at < end
            assert (why is None) == (allowed and in_rule and available), (rep, country, employees, at, why)
            if why is not None:  # every exclusion in words
                assert why.startswith(("outside territory ", "outside territories: ", "not eligible under rule 1 (enterprise)",
                                       "outside working hours", "out of office 2026-01-01 to 2026-01-31")), why
        if d.rep_id is not None:
            routed += 1
            assert d.considered[d.rep_id] is None
            assert rig.owners()[d.lead_id] == d.rep_id
        else:
            assert all(why for why in d.considered.values())
    assert routed > 10
    reasons = " | ".join(w for d in decisions for w in d.considered.values() if w)
    assert "outside territory americas: country" in reasons and "out of office" in reasons
    assert "not eligible under rule 1 (enterprise)" in reasons


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_write_reason_on_when_routed_then_the_record_says_why_in_at_most_255_characters(rig_factory, crm):
    from sync.config.settings import RoutingSettings

    rig = rig_factory(crm, arrivals_per_day=40)
    (rig.state_dir / "routing.toml").write_text(ROUTING, encoding="utf-8")
    rig.rebuild(routing=RoutingSettings(file=rig.state_dir / "routing.toml", write_reason=True))
    rig.srv.advance(0.25)  # Monday 15:00 UTC
    assert run_cycle(rig.deps).ok
    names = {str(rig.cid(u["Id"])): u["Name"] for u in rig.srv.store.all("User")}
    field = "leadpilot_routing_reason" if crm == "hubspot" else "LeadPilot_Routing_Reason__c"
    decisions = rig.deps.store.assignments()
    assert decisions
    for d in decisions:
        record = rig.leads()[d.lead_id]
        reason = next(v for k, v in record.items() if k.lower() == field.lower())
        assert 0 < len(reason) <= 255
        if d.rep_id is not None:
            assert reason.startswith(f"{names[d.rep_id]}: chosen by contextual (p={d.propensity:.2f})")
        else:
            assert reason.startswith("Queued: none of 5 reps could take it")
        assert "Carmen Ruiz: out of office 2026-01-01 to 2026-01-31" in reason or reason.endswith("…")
        assert not any(rid in reason for rid in names if len(rid) > 3)  # names, not owner ids


def test_given_the_routing_reason_off_by_default_then_nothing_is_written_there(rig_factory):
    rig = rig_factory("salesforce")
    assert rig.settings.routing.write_reason is False
    rig.srv.advance(0.25)
    assert run_cycle(rig.deps).ok and rig.deps.store.assignments()
    assert not any(r.get("LeadPilot_Routing_Reason__c") for r in rig.leads().values())
