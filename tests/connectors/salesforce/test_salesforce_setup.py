"""Salesforce day one through the real connector: init-crm's plan (idempotent, dry run), the
preflight checklist, list_reps, and call deadlines against a hung sandbox response."""

from __future__ import annotations

import time
from typing import Any

import pytest

from connectors.preflight import CheckItem, all_ok

pytestmark = pytest.mark.integration

OUR_FIELDS = ("LeadPilot_Score__c", "LeadPilot_Grade__c", "LeadPilot_Opportunity__c", "LeadPilot_Reasons__c",
              "LeadPilot_Model_Version__c", "LeadPilot_Scored_At__c", "LeadPilot_Routing_Reason__c")


def changes(server: Any) -> int:
    """Calls that change the org: REST creates/updates/deletes and Metadata saves."""
    return sum(n for k, n in server.ctx.counters.items()
               if k.startswith(("salesforce POST /services/data", "salesforce PATCH", "salesforce DELETE")))


def soap(server: Any) -> int:
    return sum(n for k, n in server.ctx.counters.items() if "/Soap/m/" in k)


def by_name(items: list[CheckItem]) -> dict[str, CheckItem]:
    return {i.name: i for i in items}


def test_given_a_fresh_org_when_init_crm_then_everything_set_up_once_and_a_rerun_changes_nothing(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=11, leads=5)
    c = make(server, "salesforce")
    reps = sorted(server.world.reps)[:2]

    planned = c.init_crm(reps, dry_run=True)
    assert not server.store.custom_fields["Lead"] and changes(server) == 0  # a dry run changes nothing
    done = c.init_crm(reps)
    assert done == planned
    assert done[0] == "create Lead fields " + ", ".join(OUR_FIELDS)
    assert "create permission set LeadPilot_Integration" in done and "create permission set LeadPilot_Reps" in done
    assert "grant read+edit on Lead.LeadPilot_Score__c in LeadPilot_Integration" in done
    assert "grant read on Lead.LeadPilot_Reasons__c in LeadPilot_Reps" in done
    assert "assign LeadPilot_Integration to integration@leadpilot.sandbox" in done
    assert sum(line.startswith("assign LeadPilot_Reps to ") for line in done) == 2
    assert sum("section" in line for line in done) == 2  # both Lead page layouts
    assert done[-1].startswith("create the list view 'My leads by leadpilot score'")

    layout = server.ctx.state["sf_layouts"]["Lead-Lead Layout"][-1]
    assert layout["label"] == "leadpilot"
    assert [f for _, f in layout["columns"][0]] == ["LeadPilot_Score__c", "LeadPilot_Grade__c",
                                                     "LeadPilot_Reasons__c", "LeadPilot_Opportunity__c"]
    assert server.ctx.state["sf_list_views"]["Lead.LeadPilot_My_Leads"]["filterScope"] == "Mine"

    writes, saves = changes(server), soap(server)
    assert c.init_crm(reps) == [] and c.init_crm(reps, dry_run=True) == []
    assert changes(server) == writes  # a rerun only reads
    assert soap(server) - saves == 6  # per run: listMetadata, readMetadata of the layouts and of the list view
    assert c.ensure_fields() == []


def test_given_named_layouts_and_a_rep_profile_when_init_crm_then_only_those(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=12, leads=3)
    c = make(server, "salesforce", salesforce={"layouts": ("Lead-Lead Layout",), "rep_access": "profile:Standard User"})
    done = c.init_crm()
    assert [line for line in done if "section" in line] == [
        "add the 'leadpilot' section (LeadPilot_Score__c, LeadPilot_Grade__c, LeadPilot_Reasons__c, "
        "LeadPilot_Opportunity__c) on page layout Lead-Lead Layout"]
    assigned = [line for line in done if line.startswith("assign LeadPilot_Reps")]
    assert len(assigned) == len(server.world.reps)  # every active standard-profile user
    bad = make(server, "salesforce", salesforce={"layouts": ("Lead-Nope Layout",)})
    with pytest.raises(ValueError, match="no Lead page layout named 'Lead-Nope Layout'"):
        bad.init_crm()
    wrong = make(server, "salesforce", salesforce={"rep_access": "group:x"})  # neither profile: nor permission_set_group:
    with pytest.raises(ValueError, match="LEADPILOT_SALESFORCE__REP_ACCESS"):
        wrong.init_crm()


def test_given_a_fresh_org_when_preflight_then_missing_fields_and_metadata_permission_are_named(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=13, leads=3)
    c = make(server, "salesforce")
    queue, inactive = server.world.queue_id, next(u["Id"] for u in server.store.all("User") if not u["IsActive"])
    rep = sorted(server.world.reps)[0]
    items = by_name(c.preflight(user_ids=[rep, inactive, "005000000000999AAA", "ghost@nowhere.example", queue]))
    assert items["credentials"].ok and "integration@leadpilot.sandbox" in items["credentials"].detail
    assert items["API access"].ok
    score = items["field Lead.LeadPilot_Score__c editable"]
    assert not score.ok and score.detail == "does not exist" and "init-crm" in (score.fix or "")
    assert items["Metadata API permission (to create the missing fields)"].ok
    assert items["Lead fields leadpilot reads visible"].ok
    assert items["Opportunity outcomes readable (Opportunity.IsWon, Lead.ConvertedOpportunityId)"].ok
    assert items["owners readable"].ok
    assert items[f"user {rep} exists and is active"].ok
    assert items[f"user {inactive} exists and is active"].detail.endswith("is inactive")
    assert items["user 005000000000999AAA exists and is active"].detail == "no such user in this org"
    assert not items["user ghost@nowhere.example exists and is active"].ok
    assert items[f"user {queue} exists and is active"].ok

    c.init_crm([rep])
    assert all_ok(c.preflight(user_ids=[rep]))
    # one grant removed: the field exists but the integration user may no longer see it
    grant = next(r for r in server.store.all("FieldPermissions") if r["Field"] == "Lead.LeadPilot_Grade__c")
    server.store.purge("FieldPermissions", grant["Id"])
    grade = by_name(c.preflight())["field Lead.LeadPilot_Grade__c editable"]
    assert not grade.ok and "no access" in grade.detail and "LeadPilot_Integration" in (grade.fix or "")


def test_given_no_routing_reason_field_when_preflight_then_required_only_with_write_reason_on(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=16, leads=3)
    c = make(server, "salesforce")
    c.ensure_fields()
    for grant in [r for r in server.store.all("FieldPermissions") if r["Field"] == "Lead.LeadPilot_Routing_Reason__c"]:
        server.store.purge("FieldPermissions", grant["Id"])
    name = "field Lead.LeadPilot_Routing_Reason__c editable"

    off = c.preflight()
    assert all_ok(off) and name not in by_name(off) and "field Lead.LeadPilot_Score__c editable" in by_name(off)
    item = by_name(c.preflight(writes_reason=True))[name]
    assert not item.ok and "no access" in item.detail and "init-crm" in (item.fix or "")


def test_given_a_read_only_grant_when_preflight_then_not_editable(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=14, leads=3)
    c = make(server, "salesforce")
    c.ensure_fields()
    for fp in server.store.all("FieldPermissions"):
        if fp["Field"] == "Lead.LeadPilot_Reasons__c":
            fp["PermissionsEdit"] = False
    item = by_name(c.preflight())["field Lead.LeadPilot_Reasons__c editable"]
    assert not item.ok and item.detail == "readable but not editable by the integration user"


def test_given_a_wrong_password_when_preflight_then_one_item_saying_what_to_do(sandbox_factory: Any, make: Any) -> None:
    from connectors.salesforce.settings import SalesforcePassword

    server = sandbox_factory(seed=15, leads=3)
    sf = server.info["salesforce"]
    auth = SalesforcePassword(username=sf["username"], password="wrong-pw", consumer_key=sf["client_id"],
                              consumer_secret=sf["client_secret"])
    items = make(server, "salesforce", salesforce={"auth": auth}).preflight()
    assert len(items) == 1 and not items[0].ok and items[0].name == "credentials"
    assert "refused the password of integration@leadpilot.sandbox" in (items[0].fix or "")
    assert "wrong-pw" not in str(items)


def test_given_list_reps_then_active_standard_users_only(sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=16, leads=3)
    portal = server.store.insert("User", {"Name": "Partner Pat", "Username": "pat@partner.example", "IsActive": True,
                                          "UserType": "PowerPartner"})
    reps = make(server, "salesforce").list_reps()
    humans = {r.id for r in reps if not r.is_queue}
    assert humans == {*server.world.reps, server.world.integration_user_id}  # no portal, no inactive user
    assert portal not in humans and all(r.active for r in reps)


def test_given_a_hung_response_when_called_then_the_read_deadline_ends_it_and_the_retry_succeeds(
        sandbox_factory: Any, make: Any, clock: Any) -> None:
    server = sandbox_factory(seed=17, leads=3)
    c = make(server, "salesforce", salesforce={"read_timeout": 0.4, "connect_timeout": 2})
    assert c.sf is not None  # logged in before the server hangs
    server.hold(3.0)  # the next response comes only after 3 s of real time
    start = time.monotonic()
    reps = c.list_reps()
    assert time.monotonic() - start < 2.5 and reps
    assert c.retrier.retries == 1 and len(clock.sleeps) == 1  # a timeout is transient: retried once


def test_given_a_permission_set_group_when_init_crm_then_the_reps_set_joins_it_and_its_holders_read_scores(
        sandbox_factory: Any, make: Any) -> None:
    from pathlib import Path

    from connectors.salesforce.session import build_session, login
    from connectors.salesforce.settings import SalesforcePassword, SalesforceSettings
    from connectors.usage import UsageMeter

    server = sandbox_factory(seed=18, leads=3)
    c = make(server, "salesforce", salesforce={"rep_access": "permission_set_group:Sales_Reps"})
    with pytest.raises(ValueError, match="no permission set group named 'Sales_Reps'"):
        c.init_crm()
    info = server.info["salesforce"]
    rep_id = next(u["Id"] for u in server.store.all("User") if u["Username"] == info["rep_username"])
    group = c.sf.PermissionSetGroup.create({"DeveloperName": "Sales_Reps", "MasterLabel": "Sales reps"})["id"]
    c.sf.PermissionSetAssignment.create({"PermissionSetGroupId": group, "AssigneeId": rep_id})
    done = c.init_crm()
    assert "add LeadPilot_Reps to permission set group Sales_Reps" in done
    assert not [line for line in done if line.startswith("assign LeadPilot_Reps")]
    assert c.init_crm() == []
    settings = SalesforceSettings(auth=SalesforcePassword(username=info["rep_username"], password=info["rep_password"],
                                                          consumer_key=info["client_id"],
                                                          consumer_secret=info["client_secret"]),
                                  login_url=info["instance_url"], ca_bundle=Path(server.info["ca_cert"]))
    rep = login(settings, build_session(settings, UsageMeter()))
    assert rep.query("SELECT Id, LeadPilot_Score__c, LeadPilot_Grade__c FROM Lead")["totalSize"] == 3


def test_given_the_session_then_every_request_has_a_deadline_and_bulk_downloads_a_longer_one() -> None:
    from connectors.salesforce.session import DeadlineAdapter, build_session
    from connectors.salesforce.settings import SalesforceSettings
    from connectors.usage import UsageMeter

    settings = SalesforceSettings(connect_timeout=3, read_timeout=20, bulk_read_timeout=200)
    adapter = build_session(settings, UsageMeter()).get_adapter("https://acme.my.salesforce.com/")
    assert isinstance(adapter, DeadlineAdapter)
    base = "https://acme.my.salesforce.com/services/data/v59.0"
    assert adapter.deadline(f"{base}/query/?q=SELECT+Id+FROM+Lead") == (3, 20)
    assert adapter.deadline(f"{base}/jobs/ingest/750x/successfulResults/") == (3, 200)
    assert adapter.deadline(f"{base}/jobs/query/750x/results?maxRecords=50000") == (3, 200)
    assert adapter.deadline("https://acme.my.salesforce.com/services/Soap/m/59.0/") == (3, 20)
    assert SalesforceSettings().connect_timeout == 10 and SalesforceSettings().read_timeout == 60


def test_given_two_init_crm_at_once_when_the_other_finished_first_then_the_late_plan_still_succeeds(
        sandbox_factory: Any, make: Any) -> None:
    server = sandbox_factory(seed=19, leads=3)
    late, early = make(server, "salesforce"), make(server, "salesforce")
    reps = sorted(server.world.reps)[:1]
    plan = late._plan(late.setup_options(reps), full=True, created=[])  # planned on a fresh org …
    assert early.init_crm(reps)  # … while another init-crm sets everything up
    for step in plan.steps:  # duplicates are what the late run wanted: no failure
        step.apply()
    assert early.init_crm(reps) == []
    assert len([r for r in server.store.all("PermissionSet") if r["Name"] == "LeadPilot_Integration"]) == 1
