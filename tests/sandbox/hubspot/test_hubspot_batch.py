"""HubSpot batch read/update, single records and v4 associations through hubspot-api-client."""

from __future__ import annotations

import json

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectInput,
)

from sandbox.hubspot.props import hs_id
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


def _read(hs: HubSpot, ids: list[str], props: list[str]) -> object:
    return hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": i} for i in ids], properties=props, properties_with_history=[]))


def _update(hs: HubSpot, inputs: list[dict[str, object]]) -> object:
    return hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))


def _lead_ids(server: SandboxServer, n: int, start: int = 0) -> list[str]:
    return [hs_id(r["Id"]) for r in sorted(server.store.all("Lead"), key=lambda r: r["Id"])[start:start + n]]


def _rep_owner_ids(server: SandboxServer) -> list[str]:
    return [hs_id(uid) for uid in sorted(server.world.reps)]


def test_given_known_ids_when_batch_read_then_200_with_requested_properties(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    ids = _lead_ids(sandbox_server, 3)
    resp = _read(hs, ids, ["email", "hubspot_owner_id"])
    assert type(resp).__name__ == "BatchResponseSimplePublicObject"
    assert sorted(r.id for r in resp.results) == sorted(ids)
    assert all(set(r.properties) == {"email", "hubspot_owner_id"} for r in resp.results)


def test_given_an_unknown_id_when_batch_read_then_207_with_the_missing_id(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    resp = _read(hs, [*_lead_ids(sandbox_server, 2), "987654321"], ["email"])
    assert resp.num_errors == 1 and len(resp.results) == 2
    assert resp.errors[0].category == "OBJECT_NOT_FOUND" and resp.errors[0].context == {"ids": ["987654321"]}


def test_given_valid_inputs_when_batch_update_then_written_and_modstamp_bumped(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    ids = _lead_ids(sandbox_server, 2, start=10)
    owner = _rep_owner_ids(sandbox_server)[0]
    before = {i: sandbox_server.store.get("Lead", f"00Q{int(i):012d}AAA")["SystemModstamp"] for i in ids}
    resp = _update(hs, [{"id": i, "properties": {"hubspot_owner_id": owner, "jobtitle": "Buyer"}} for i in ids])
    assert type(resp).__name__ == "BatchResponseSimplePublicObject" and resp.status == "COMPLETE"
    for i in ids:
        rec = sandbox_server.store.get("Lead", f"00Q{int(i):012d}AAA")
        assert rec["Title"] == "Buyer" and hs_id(rec["OwnerId"]) == owner
        assert rec["SystemModstamp"] > before[i]
    assert {r.properties["hubspot_owner_id"] for r in resp.results} == {owner}


def test_given_bad_inputs_when_batch_update_then_207_per_input_and_good_ones_written(
        sandbox_server: SandboxServer, hs: HubSpot) -> None:
    good, unknown_prop, read_only, bad_owner, bad_number = _lead_ids(sandbox_server, 5, start=20)
    resp = _update(hs, [
        {"id": good, "properties": {"company": "Good Co"}},
        {"id": unknown_prop, "properties": {"not_a_property": "x"}},
        {"id": read_only, "properties": {"createdate": "2020-01-01T00:00:00Z"}},
        {"id": bad_owner, "properties": {"hubspot_owner_id": "424242"}},
        {"id": bad_number, "properties": {"numberofemployees": "many"}},
        {"id": "999999999", "properties": {"company": "Nobody"}},
    ])
    assert resp.num_errors == 5 and [r.id for r in resp.results] == [good]
    by_id = {e.context["ids"][0]: e for e in resp.errors if "ids" in e.context and e.category == "VALIDATION_ERROR"}
    assert "PROPERTY_DOESNT_EXIST" in by_id[unknown_prop].message
    assert "READ_ONLY_VALUE" in by_id[read_only].message
    assert "INVALID_OWNER_ID" in by_id[bad_owner].message
    assert "INVALID_DOUBLE" in by_id[bad_number].message
    missing = [e for e in resp.errors if e.category == "OBJECT_NOT_FOUND"]
    assert missing[0].context == {"ids": ["999999999"]}
    assert sandbox_server.store.get("Lead", f"00Q{int(unknown_prop):012d}AAA")["Company"] != "x"


def test_given_more_than_100_inputs_then_400(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as exc:
        _update(hs, [{"id": str(i), "properties": {"company": "x"}} for i in range(101)])
    assert exc.value.status == 400 and json.loads(exc.value.body)["category"] == "VALIDATION_ERROR"


def test_given_duplicate_ids_then_400(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    i = _lead_ids(sandbox_server, 1)[0]
    with pytest.raises(ApiException) as exc:
        _update(hs, [{"id": i, "properties": {"company": "a"}}, {"id": i, "properties": {"company": "b"}}])
    assert exc.value.status == 400


def test_single_get_and_update(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    i = _lead_ids(sandbox_server, 1, start=30)[0]
    obj = hs.crm.contacts.basic_api.get_by_id(i, properties=["email", "message"])
    assert obj.id == i and obj.properties["message"]
    hs.crm.contacts.basic_api.update(i, {"properties": {"jobtitle": "CTO"}})
    assert hs.crm.contacts.basic_api.get_by_id(i, properties=["jobtitle"]).properties["jobtitle"] == "CTO"
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.basic_api.get_by_id("999999999")
    assert exc.value.status == 404


def test_deals_to_contacts_associations_follow_conversions(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    opp_lead = dict(list(sandbox_server.store.opportunity_lead.items())[:5])
    assert opp_lead, "the preloaded world has converted leads"
    inputs = [{"id": hs_id(o)} for o in opp_lead] + [{"id": "999999999"}]
    resp = hs.crm.associations.v4.batch_api.get_page("deals", "contacts",
                                                    BatchInputPublicFetchAssociationsBatchRequest(inputs=inputs))
    got = {r._from.id: [t.to_object_id for t in r.to] for r in resp.results}
    assert got == {hs_id(o): [hs_id(lid)] for o, lid in opp_lead.items()}  # the wire has a number; the model holds str
    assert resp.results[0].to[0].association_types[0].type_id == 3
    assert resp.num_errors == 1 and resp.errors[0].category == "OBJECT_NOT_FOUND"


def test_given_over_1000_association_inputs_then_400(hs: HubSpot) -> None:
    from hubspot.crm.associations.v4 import ApiException as AssocApiException

    with pytest.raises(AssocApiException) as exc:
        hs.crm.associations.v4.batch_api.get_page(
            "deals", "contacts", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": str(i)} for i in range(1001)]))
    assert exc.value.status == 400


def test_given_owner_and_other_writes_when_writes_read_then_counted_per_record(
        sandbox_server: SandboxServer, hs: HubSpot) -> None:
    import requests

    def writes(method: str) -> dict[str, object]:
        info = sandbox_server.info
        resp = requests.request(method, f"{info['admin_url']}/writes?object=Lead", verify=info["ca_cert"], timeout=30)
        assert resp.status_code == 200
        return dict(resp.json())

    writes("DELETE")
    a, b = _lead_ids(sandbox_server, 2, start=20)
    owner = _rep_owner_ids(sandbox_server)[1]
    _update(hs, [{"id": a, "properties": {"hubspot_owner_id": owner}}, {"id": b, "properties": {"jobtitle": "CTO"}}])
    hs.crm.contacts.basic_api.update(a, SimplePublicObjectInput(properties={"hubspot_owner_id": owner}))
    sandbox_server.store.update("Lead", f"00Q{int(b):012d}AAA", {"OwnerId": "005000000000001AAA"})  # the world's own
    assert writes("GET") == {"object": "Lead", "records": {
        f"00Q{int(a):012d}AAA": {"owner": 2, "leadpilot": 0}, f"00Q{int(b):012d}AAA": {"owner": 0, "leadpilot": 0}}}
    assert writes("DELETE")["records"] and writes("GET")["records"] == {}
    info = sandbox_server.info
    bad = requests.get(f"{info['admin_url']}/writes?object=Nope", verify=info["ca_cert"], timeout=30)
    assert bad.status_code == 400 and "unknown object" in bad.json()["error"]
