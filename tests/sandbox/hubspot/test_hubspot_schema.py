"""HubSpot owners, property groups and properties through hubspot-api-client."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput
from hubspot.crm.properties import ApiException, PropertyCreate, PropertyGroupCreate

from sandbox.hubspot.props import hs_id
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


def test_owners_page_through_active_users_with_the_queue_typed_queue(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    api = hs.crm.owners.owners_api
    owners, after = [], None
    while True:
        page = api.get_page(limit=3, after=after)
        owners += page.results
        if not page.paging:
            break
        after = page.paging.next.after
    active = [u for u in sandbox_server.store.all("User") if u["IsActive"]]
    assert sorted(o.id for o in owners) == sorted(hs_id(u["Id"]) for u in active)
    types = {o.email: o.type for o in owners}
    assert types["lead-queue@leadpilot.sandbox"] == "QUEUE"
    assert sum(t == "PERSON" for t in types.values()) == len(sandbox_server.world.reps) + 1  # reps + integration user


def test_owners_filter_by_email_and_archived(hs: HubSpot) -> None:
    api = hs.crm.owners.owners_api
    assert [o.email for o in api.get_page(email="avery.chen@leadpilot.sandbox").results] == ["avery.chen@leadpilot.sandbox"]
    archived = api.get_page(archived=True).results
    assert [o.email for o in archived] == ["ivan.petrov@leadpilot.sandbox"] and archived[0].archived


def test_given_a_new_group_and_property_then_201_then_409_on_duplicates(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    props = hs.crm.properties
    group = props.groups_api.create("contacts", PropertyGroupCreate(name="leadpilot", label="LeadPilot"))
    assert group.name == "leadpilot"
    with pytest.raises(ApiException) as dup_group:
        props.groups_api.create("contacts", PropertyGroupCreate(name="leadpilot", label="LeadPilot"))
    assert dup_group.value.status == 409
    created = props.core_api.create("contacts", PropertyCreate(
        name="leadpilot_score", label="LeadPilot score", type="number", field_type="number", group_name="leadpilot"))
    assert created.name == "leadpilot_score" and created.type == "number" and created.group_name == "leadpilot"
    with pytest.raises(ApiException) as dup_prop:
        props.core_api.create("contacts", PropertyCreate(
            name="leadpilot_score", label="x", type="number", field_type="number", group_name="leadpilot"))
    assert dup_prop.value.status == 409 and "OBJECT_ALREADY_EXISTS" in dup_prop.value.body
    assert props.core_api.get_by_name("contacts", "leadpilot_score").label == "LeadPilot score"
    assert "leadpilot_score" in {p.name for p in props.core_api.get_all("contacts").results}


def test_given_a_created_property_then_it_is_writable_and_searchable(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    hs.crm.properties.core_api.create("contacts", PropertyCreate(
        name="leadpilot_grade", label="Grade", type="enumeration", field_type="select", group_name="contactinformation",
        options=[{"label": "A", "value": "A", "displayOrder": 0, "hidden": False}]))
    lead = sorted(sandbox_server.store.all("Lead"), key=lambda r: r["Id"])[50]
    resp = hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": hs_id(lead["Id"]), "properties": {"leadpilot_grade": "A"}}]))
    assert resp.results[0].properties["leadpilot_grade"] == "A"
    found = hs.crm.contacts.search_api.do_search({"filterGroups": [{"filters": [
        {"propertyName": "leadpilot_grade", "operator": "EQ", "value": "A"}]}], "properties": ["leadpilot_grade"]})
    assert [r.id for r in found.results] == [hs_id(lead["Id"])]
    assert sandbox_server.store.get("Lead", lead["Id"])["leadpilot_grade"] == "A"
    other = sorted(sandbox_server.store.all("Lead"), key=lambda r: r["Id"])[51]
    refused = hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(  # not an option: 207
        inputs=[{"id": hs_id(other["Id"]), "properties": {"leadpilot_grade": "E"}}]))
    assert refused.errors[0].category == "VALIDATION_ERROR" and "INVALID_OPTION" in refused.errors[0].message
    assert sandbox_server.store.get("Lead", other["Id"]).get("leadpilot_grade") is None


def test_given_a_missing_group_or_bad_type_then_400(hs: HubSpot) -> None:
    api = hs.crm.properties.core_api
    with pytest.raises(ApiException) as no_group:
        api.create("contacts", PropertyCreate(name="x_field", label="x", type="string", field_type="text", group_name="nope"))
    assert no_group.value.status == 400 and "nope" in no_group.value.body
    with pytest.raises(ApiException) as bad_name:
        api.create("contacts", PropertyCreate(name="Bad Name", label="x", type="string", field_type="text",
                                              group_name="contactinformation"))
    assert bad_name.value.status == 400
