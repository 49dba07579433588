"""Territories by state/province against the sandbox, through the real clients: the connector
pulls the lead's own state (Salesforce ``State``, HubSpot ``state``), so a territory naming
"California" takes a lead whose form said "California" or "CA", and a lead in the same country
without a state (or in another state) does not go there."""

from __future__ import annotations

import pytest

from sync.jobs.cycle import run_cycle

pytestmark = pytest.mark.integration

ROUTING = """
[territories.california]
country = ["United States"]
state = ["California"]

[territories.texas]
country = ["US"]
state = ["US-TX"]

[territories.bavaria]
country = ["DE"]
state = ["Bayern"]

[[reps]]
email = "avery.chen@leadpilot.sandbox"
territory = "california"

[[reps]]
email = "blake.morgan@leadpilot.sandbox"
territories = ["texas", "bavaria"]
"""
# the test's own reading of the file (independent of the router and of pycountry)
STATES = {"Avery": {("United States", "california"), ("United States", "ca")},
          "Blake": {("United States", "texas"), ("United States", "tx"), ("Germany", "bayern")}}
# the lead's country and state as its record says, and who alone may take it (None: nobody)
PLANTED = [("United States", "California", "Avery"), ("United States", "CA", "Avery"),
           ("United States", "Texas", "Blake"), ("United States", None, None), ("Canada", "California", None)]


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_territories_by_state_when_leads_arrive_then_the_pulled_state_decides(rig_factory, crm):
    from sync.config.settings import RoutingSettings

    rig = rig_factory(crm, arrivals_per_day=40)
    (rig.state_dir / "routing.toml").write_text(ROUTING, encoding="utf-8")
    rig.rebuild(routing=RoutingSettings(file=rig.state_dir / "routing.toml"))
    by_email = {u["Email"].split(".")[0].capitalize(): str(rig.cid(u["Id"])) for u in rig.srv.store.all("User")}
    rig.srv.advance(0.5)
    waiting = sorted(rid for rid, r in ((r["Id"], r) for r in rig.srv.store.all("Lead"))
                     if r["OwnerId"] == rig.srv.world.queue_id and not r.get("IsConverted"))
    assert len(waiting) > len(PLANTED)
    planted = {}
    for rid, (country, state, who) in zip(waiting, PLANTED, strict=False):
        rig.srv.store.update("Lead", rid, {"Country": country, "State": state, "NumberOfEmployees": 50})
        planted[str(rig.cid(rid))] = who

    assert run_cycle(rig.deps).ok
    decisions = {d.lead_id: d for d in rig.deps.store.assignments()}
    for lid, who in planted.items():
        d = decisions[lid]
        assert d.rep_id == (by_email[who] if who else None), (rig.leads()[lid].get("State"), d.considered)
    reasons = [why for lid in planted for why in decisions[lid].considered.values() if why]
    assert any("state" in why for why in reasons), reasons  # the exclusions name the state

    # the world's own arrivals carry states too: each goes only where its state allows
    leads = rig.leads()
    with_state = 0
    for d in decisions.values():
        lead = leads[d.lead_id]
        where = (lead["Country"], (lead.get("State") or "").lower())
        with_state += bool(lead.get("State"))
        allowed = {who for who, places in STATES.items() if where in places}
        assert (d.rep_id is None) == (not allowed), (where, d.considered)
        if d.rep_id is not None:
            assert d.rep_id in {by_email[w] for w in allowed}
            assert rig.owners()[d.lead_id] == d.rep_id
    assert with_state > len(PLANTED)


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_a_territory_on_a_custom_field_then_the_connector_pulls_that_field(rig_factory, crm):
    from sync.config.settings import RoutingSettings

    field = "Region__c" if crm == "salesforce" else "sales_region"  # HubSpot names are lower case
    rig = rig_factory(crm, arrivals_per_day=40)
    rig.srv.store.add_field("Lead", field, "string")
    if crm == "salesforce":  # the admin grants it to leadpilot's permission set (field-level security)
        grant = next(fp for fp in rig.srv.store.all("FieldPermissions") if fp["Field"] == "Lead.LeadPilot_Score__c")
        rig.srv.store.insert("FieldPermissions", {**grant, "Id": None, "Field": f"Lead.{field}", "PermissionsEdit": False})
    (rig.state_dir / "routing.toml").write_text(f"""
[territories.north]
fields = {{ {field} = ["North"] }}

[[reps]]
email = "avery.chen@leadpilot.sandbox"
territory = "north"
""", encoding="utf-8")
    rig.rebuild(routing=RoutingSettings(file=rig.state_dir / "routing.toml"))
    avery = next(str(rig.cid(u["Id"])) for u in rig.srv.store.all("User") if u["Email"].startswith("avery.chen@"))
    rig.srv.advance(0.5)
    waiting = sorted(r["Id"] for r in rig.srv.store.all("Lead")
                     if r["OwnerId"] == rig.srv.world.queue_id and not r.get("IsConverted"))
    north, south = waiting[:2]
    rig.srv.store.update("Lead", north, {field: "North"})
    rig.srv.store.update("Lead", south, {field: "South"})

    assert run_cycle(rig.deps).ok
    decisions = {d.lead_id: d for d in rig.deps.store.assignments()}
    assert decisions[str(rig.cid(north))].rep_id == avery
    assert decisions[str(rig.cid(south))].rep_id is None
    assert field in decisions[str(rig.cid(south))].considered[avery]  # the exclusion names the field
