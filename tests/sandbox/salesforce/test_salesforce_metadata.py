"""Custom fields through the Metadata API (``sf.mdapi``, zeep over SOAP): created fields become
queryable, writable and described once a permission set grants them; duplicates answer
DUPLICATE_DEVELOPER_NAME."""

from __future__ import annotations

import pytest
from sf_client import grant, login, sandbox_session, trust_mdapi
from simple_salesforce import Salesforce
from zeep.exceptions import Fault

from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sf(sandbox_server: SandboxServer) -> Salesforce:
    client = login(sandbox_server.info, "password")
    trust_mdapi(client, sandbox_server.info)
    return client


def number_field(sf: Salesforce, full_name: str, label: str = "ML Score") -> object:
    return sf.mdapi.CustomField(fullName=full_name, label=label, type=sf.mdapi.FieldType("Number"),
                                precision=5, scale=0)


def test_given_new_field_when_created_then_queryable_writable_and_described(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    sf.mdapi.CustomField.create([
        number_field(sf, "Lead.LP_Score__c"),
        sf.mdapi.CustomField(fullName="Lead.LP_Reasons__c", label="Score reasons",
                             type=sf.mdapi.FieldType("LongTextArea"), length=32768, visibleLines=5),
        sf.mdapi.CustomField(fullName="Lead.LP_Scored_At__c", label="Scored at", type=sf.mdapi.FieldType("DateTime")),
    ])
    grant(sf, "LP_Fields", {"Lead.LP_Score__c": True, "Lead.LP_Reasons__c": True, "Lead.LP_Scored_At__c": True},
          sandbox_server.world.integration_user_id)
    rid = next(iter(sorted(sandbox_server.store.records["Lead"])))
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Lead"}, "Id": rid, "LP_Score__c": 87, "LP_Reasons__c": "budget; timeline",
         "LP_Scored_At__c": "2026-01-05T09:00:00.000+0000"}]})
    assert res[0]["success"]
    got = sf.query(f"SELECT Id, LP_Score__c, LP_Reasons__c, LP_Scored_At__c FROM Lead "
                   f"WHERE LP_Score__c >= 80 AND LP_Scored_At__c > 2026-01-01T00:00:00Z AND Id = '{rid}'")
    assert got["records"][0]["LP_Score__c"] == 87.0
    assert got["records"][0]["LP_Scored_At__c"] == "2026-01-05T09:00:00.000+0000"
    described = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert described["LP_Score__c"]["type"] == "double" and described["LP_Score__c"]["label"] == "ML Score"
    assert described["LP_Reasons__c"]["custom"] and described["LP_Scored_At__c"]["type"] == "datetime"
    read = sf.mdapi.CustomField.read(["Lead.LP_Score__c"])
    assert (read.fullName, read.label, read.type) == ("Lead.LP_Score__c", "ML Score", "Number")


def test_given_existing_field_when_created_again_then_duplicate_developer_name(sf: Salesforce) -> None:
    sf.mdapi.CustomField.create([number_field(sf, "Lead.LP_Dup__c")])
    with pytest.raises(Exception, match=r"\(DUPLICATE_DEVELOPER_NAME, There is already a field named LP_Dup on Lead\.\)"):
        sf.mdapi.CustomField.create([number_field(sf, "Lead.LP_Dup__c")])


@pytest.mark.parametrize(("full_name", "code"), [
    ("Account.X__c", "INVALID_CROSS_REFERENCE_KEY"),
    ("Lead.NoSuffix", "FIELD_INTEGRITY_EXCEPTION"),
    ("Lead.Email__c", None),  # a custom field may share a standard name's stem
])
def test_given_bad_component_when_created_then_error_names_it(sf: Salesforce, full_name: str, code: str | None) -> None:
    if code is None:
        sf.mdapi.CustomField.create([number_field(sf, full_name)])
        return
    with pytest.raises(Exception, match=code):
        sf.mdapi.CustomField.create([number_field(sf, full_name)])


def test_given_invalid_session_when_metadata_call_then_soap_fault(sandbox_server: SandboxServer) -> None:
    client = Salesforce(instance_url=sandbox_server.base_url, session_id="00D000000000001!expired",
                        session=sandbox_session(sandbox_server.info))
    trust_mdapi(client, sandbox_server.info)
    with pytest.raises(Fault, match="INVALID_SESSION_ID"):
        client.mdapi.CustomField.create([number_field(client, "Lead.LP_Never__c")])
    assert "LP_Never__c" not in sandbox_server.store.custom_fields["Lead"]
