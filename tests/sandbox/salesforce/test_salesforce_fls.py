"""A fresh org's field-level security, setup objects, the non-admin rep, page layouts, list views
and a hung response — through the real simple-salesforce client, as strict as a real org."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from sf_client import grant, login, trust_mdapi
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


@pytest.fixture
def org() -> Iterator[SandboxServer]:
    with SandboxServer(seed=3, leads=20) as server:
        yield server


def admin(server: SandboxServer) -> Salesforce:
    sf = login(server.info, "password")
    trust_mdapi(sf, server.info)
    return sf


def create_field(sf: Salesforce, full_name: str) -> None:
    sf.mdapi.CustomField.create([sf.mdapi.CustomField(fullName=full_name, label="LP", type=sf.mdapi.FieldType("Number"),
                                                      precision=3, scale=0)])


def test_given_a_field_created_through_metadata_when_not_granted_then_invisible_to_the_admin_too(
        org: SandboxServer) -> None:
    sf = admin(org)
    create_field(sf, "Lead.LP_X__c")
    assert "LP_X__c" not in {f["name"] for f in sf.Lead.describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest) as soql:
        sf.query("SELECT Id, LP_X__c FROM Lead")
    body = soql.value.content[0]
    assert body["errorCode"] == "INVALID_FIELD" and "No such column 'LP_X__c' on entity 'Lead'" in body["message"]
    rid = sorted(org.store.records["Lead"])[0]
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "Id": rid, "LP_X__c": 5}]})
    assert res[0]["errors"][0]["statusCode"] == "INVALID_FIELD"

    grant(sf, "LP_Read", {"Lead.LP_X__c": False}, org.world.integration_user_id)  # read only
    described = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert described["LP_X__c"]["updateable"] is False
    assert sf.query("SELECT Id, LP_X__c FROM Lead")["totalSize"] == 20
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "Id": rid, "LP_X__c": 5}]})
    assert res[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_given_setup_objects_when_created_twice_or_wrongly_then_the_real_errors(org: SandboxServer) -> None:
    sf = admin(org)
    create_field(sf, "Lead.LP_Y__c")
    ps = grant(sf, "LP_Set", {"Lead.LP_Y__c": True}, org.world.integration_user_id)
    with pytest.raises(SalesforceMalformedRequest, match="DUPLICATE_VALUE"):
        sf.PermissionSet.create({"Name": "LP_Set", "Label": "again"})
    with pytest.raises(SalesforceMalformedRequest, match="DUPLICATE_VALUE"):
        sf.PermissionSetAssignment.create({"PermissionSetId": ps, "AssigneeId": org.world.integration_user_id})
    with pytest.raises(SalesforceMalformedRequest, match="Permission Read Lead.LP_Y__c is required"):
        other = sf.PermissionSet.create({"Name": "LP_Other", "Label": "Other"})["id"]
        sf.FieldPermissions.create({"ParentId": other, "SobjectType": "Lead", "Field": "Lead.LP_Y__c",
                                    "PermissionsRead": False, "PermissionsEdit": True})
    with pytest.raises(SalesforceMalformedRequest, match="bad value for restricted picklist field: Lead.Nope__c"):
        sf.FieldPermissions.create({"ParentId": ps, "SobjectType": "Lead", "Field": "Lead.Nope__c",
                                    "PermissionsRead": True, "PermissionsEdit": False})
    rows = sf.query(f"SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions WHERE ParentId = '{ps}'")
    assert [(r["Field"], r["PermissionsEdit"]) for r in rows["records"]] == [("Lead.LP_Y__c", True)]
    sf.FieldPermissions.delete(rows["records"][0]["Id"])  # a revoked grant: the field is gone again
    assert "LP_Y__c" not in {f["name"] for f in sf.Lead.describe()["fields"]}


def test_given_the_rep_user_when_granted_through_a_permission_set_only_then_reads_but_cannot_administer(
        org: SandboxServer) -> None:
    sf = admin(org)
    create_field(sf, "Lead.LP_Z__c")
    rep = login(org.info, "rep")
    rep_id = rep.oauth2("userinfo")["user_id"]
    assert rep_id in org.world.reps and rep_id != org.world.integration_user_id
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        rep.query("SELECT Id, LP_Z__c FROM Lead")
    with pytest.raises(SalesforceMalformedRequest, match="INSUFFICIENT_ACCESS_OR_READONLY"):
        rep.PermissionSet.create({"Name": "Mine", "Label": "Mine"})
    trust_mdapi(rep, org.info)
    with pytest.raises(Exception, match="INSUFFICIENT_ACCESS"):
        create_field(rep, "Lead.LP_Rep__c")
    grant(sf, "LP_Reps", {"Lead.LP_Z__c": False}, rep_id)
    assert rep.query("SELECT Id, LP_Z__c FROM Lead LIMIT 1")["totalSize"] == 1
    # standard, active users only: the query list_reps runs
    users = sf.query("SELECT Id FROM User WHERE IsActive = true AND UserType = 'Standard'")["records"]
    assert {u["Id"] for u in users} == {*org.world.reps, org.world.integration_user_id}


def test_given_layouts_and_list_views_when_read_and_updated_then_the_metadata_round_trips(org: SandboxServer) -> None:
    sf = admin(org)
    names = sorted(p.fullName for p in sf.mdapi.list_metadata([sf.mdapi.ListMetadataQuery(type="Layout")]))
    assert names == ["Lead-Lead (Marketing) Layout", "Lead-Lead Layout"]
    layout = sf.mdapi.Layout.read(["Lead-Lead Layout"])
    assert [s.label for s in layout.layoutSections] == ["Lead Information", "Description Information"]
    with pytest.raises(Exception, match="Field:LP_Q__c does not exist"):
        sf.mdapi.Layout.update([_with_section(sf, layout, "LP_Q__c")])
    create_field(sf, "Lead.LP_Q__c")
    sf.mdapi.Layout.update([_with_section(sf, layout, "LP_Q__c")])
    again = sf.mdapi.Layout.read(["Lead-Lead Layout"])
    assert again.layoutSections[-1].label == "leadpilot"
    assert again.layoutSections[-1].layoutColumns[0].layoutItems[0].field == "LP_Q__c"

    view = sf.mdapi.ListView(fullName="Lead.LP_View", label="LP view", filterScope="Mine", columns=["LP_Q__c"])
    sf.mdapi.ListView.create([view])
    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        sf.mdapi.ListView.create([view])
    read = sf.mdapi.ListView.read(["Lead.LP_View"])
    assert (read.label, read.filterScope, list(read.columns)) == ("LP view", "Mine", ["LP_Q__c"])


def _with_section(sf: Salesforce, layout: object, field: str) -> object:
    item = sf.mdapi.LayoutItem(behavior="Readonly", field=field)
    section = sf.mdapi.LayoutSection(customLabel=True, detailHeading=True, editHeading=False, label="leadpilot",
                                     layoutColumns=[sf.mdapi.LayoutColumn(layoutItems=[item])], style="OneColumn")
    layout.layoutSections.append(section)  # type: ignore[attr-defined]
    return layout


def test_given_a_held_response_when_the_client_gives_up_then_the_next_call_is_answered_at_once(
        org: SandboxServer) -> None:
    sf = admin(org)
    requests.post(f"{org.info['admin_url']}/hold?seconds=2&count=1", verify=org.info["ca_cert"],
                  timeout=5).raise_for_status()
    start = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.session.get(f"{org.base_url}/services/data/v59.0/limits/", timeout=(2, 0.3),
                       headers={"Authorization": f"Bearer {sf.session_id}"})
    assert time.monotonic() - start < 1.5
    start = time.monotonic()
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1  # one hold only: answered at once
    assert time.monotonic() - start < 1.0
