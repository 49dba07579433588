"""Salesforce REST through the real simple-salesforce client: SOQL paging and errors,
sObject Collections with partial failures, single-record PATCH, describe, limits."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta, timezone

import pytest
from sf_client import login
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from sandbox.context import Faults
from sandbox.salesforce.values import ms
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    """This module's own sandbox: enough leads for several query pages."""
    with SandboxServer(seed=3, leads=1000, scenario="skilled") as server:
        yield server


@pytest.fixture(scope="module")
def sf(sandbox_server: SandboxServer) -> Salesforce:
    return login(sandbox_server.info, "password")


def lead_ids(server: SandboxServer, n: int, skip: int) -> list[str]:
    """``n`` open leads no other test in this module touches (``skip`` picks the slice)."""
    ids = sorted(i for i, r in server.store.records["Lead"].items() if not r["IsConverted"])
    return ids[skip:skip + n]


def calls(server: SandboxServer, route: str) -> int:
    return sum(v for k, v in server.ctx.counters.items() if k.startswith(f"salesforce GET /services/data/v59.0/{route}"))


def test_given_batch_size_when_query_all_iter_then_pages_follow_next_records_url(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    total = len(sandbox_server.store.records["Lead"])
    before = calls(sandbox_server, "query")
    first = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=200"})
    assert (first["totalSize"], first["done"], len(first["records"])) == (total, False, 200)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")  # a PATH
    records = list(sf.query_all_iter("SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id",
                                     headers={"Sforce-Query-Options": "batchSize=200"}))
    assert len(records) == total and len({r["Id"] for r in records}) == total
    assert calls(sandbox_server, "query") - before == 1 + -(-total // 200)
    stamps = [r["SystemModstamp"] for r in records]
    assert stamps == sorted(stamps) and stamps[0].endswith("+0000")
    assert records[0]["attributes"] == {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{records[0]['Id']}"}


@pytest.mark.parametrize(("header", "page"), [("batchSize=1", 200), ("batchSize=5000", 2000), ("", 2000)])
def test_given_batch_size_out_of_range_when_query_then_clamped(
        sf: Salesforce, sandbox_server: SandboxServer, header: str, page: int) -> None:
    result = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": header})
    assert len(result["records"]) == min(page, len(sandbox_server.store.records["Lead"]))


def test_given_datetime_with_offset_when_query_then_plus_sign_survives_encoding(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    stamps = sorted(ms(r["SystemModstamp"]) for r in sandbox_server.store.records["Lead"].values())
    pivot = stamps[len(stamps) // 2]
    local = pivot.astimezone(timezone(timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00"
    result = sf.query_all(f"SELECT Id FROM Lead WHERE SystemModstamp > {local}")
    assert result["totalSize"] == sum(1 for s in stamps if s > pivot) > 0


def test_given_deleted_lead_when_query_vs_query_all_then_only_query_all_sees_it(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    rid = lead_ids(sandbox_server, 1, skip=0)[0]
    sandbox_server.store.records["Lead"][rid]["IsDeleted"] = True
    try:
        soql = f"SELECT Id FROM Lead WHERE Id = '{rid}'"
        assert sf.query(soql)["totalSize"] == 0
        assert sf.query_all(soql, include_deleted=True)["totalSize"] == 1
    finally:
        sandbox_server.store.records["Lead"][rid]["IsDeleted"] = False


@pytest.mark.parametrize(("soql", "exc_code"), [
    ("SELECT Id, Bogus__c FROM Lead", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01T00:00:00Z'", "INVALID_FIELD"),
    ("SELECT Id FROM Account", "INVALID_TYPE"),
])
def test_given_bad_soql_when_query_then_malformed_request_with_list_body(
        sf: Salesforce, soql: str, exc_code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    assert err.value.status == 400
    assert isinstance(err.value.content, list) and err.value.content[0]["errorCode"] == exc_code
    assert "ERROR at Row:1:Column:" in err.value.content[0]["message"]


def test_given_users_and_opportunities_when_queried_then_real_shapes(sf: Salesforce) -> None:
    users = sf.query_all("SELECT Id, Name, Email FROM User WHERE IsActive = true")["records"]
    assert len(users) >= 3 and all(u["Id"].startswith("005") for u in users)
    opps = sf.query_all("SELECT Id, IsClosed, IsWon, StageName, Amount, CloseDate FROM Opportunity "
                        "WHERE SystemModstamp > 2000-01-01T00:00:00Z")["records"]
    assert opps and all(len(o["CloseDate"]) == 10 for o in opps)
    converted = sf.query_all("SELECT Id, ConvertedOpportunityId FROM Lead WHERE IsConverted = true")["records"]
    assert {c["ConvertedOpportunityId"] for c in converted} <= {o["Id"] for o in opps}


def test_given_mixed_collection_when_patch_then_per_record_results_in_request_order(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    ok1, bad_field, ok2, read_only = lead_ids(sandbox_server, 4, skip=10)
    inactive = next(u["Id"] for u in sandbox_server.store.records["User"].values() if not u["IsActive"])
    stamp_before = sandbox_server.store.records["Lead"][ok1]["SystemModstamp"]
    records = [
        {"attributes": {"type": "Lead"}, "Id": ok1, "Title": "CFO"},
        {"attributes": {"type": "Lead"}, "Id": bad_field, "Nope__c": 1},
        {"attributes": {"type": "Lead"}, "Id": "00Q999999999999AAA", "Title": "x"},
        {"attributes": {"type": "Lead"}, "Id": ok2, "OwnerId": inactive},
        {"attributes": {"type": "Lead"}, "Id": read_only, "SystemModstamp": "2020-01-01T00:00:00Z"},
        {"attributes": {"type": "Lead"}, "Id": "not-an-id", "Title": "x"},
    ]
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    assert [r["success"] for r in res] == [True, False, False, False, False, False]
    assert res[0] == {"id": ok1, "success": True, "errors": []}
    codes = [r["errors"][0]["statusCode"] for r in res[1:]]
    assert codes == ["INVALID_FIELD", "INVALID_CROSS_REFERENCE_KEY", "INACTIVE_OWNER_OR_USER",
                     "INVALID_FIELD_FOR_INSERT_UPDATE", "MALFORMED_ID"]
    assert res[1]["errors"][0]["message"] == "No such column 'Nope__c' on sobject of type Lead"
    assert sandbox_server.store.records["Lead"][ok1]["Title"] == "CFO"
    assert sandbox_server.store.records["Lead"][ok1]["SystemModstamp"] > stamp_before  # our writes bump it too


def test_given_all_or_none_when_one_fails_then_nothing_is_written(sf: Salesforce, sandbox_server: SandboxServer) -> None:
    good, bad = lead_ids(sandbox_server, 2, skip=20)
    title = sandbox_server.store.records["Lead"][good]["Title"]
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Lead"}, "Id": good, "Title": "Rolled back"},
        {"attributes": {"type": "Lead"}, "Id": bad, "NumberOfEmployees": "many"}]})
    assert res[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert res[1]["errors"][0] == {"statusCode": "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                   "message": "NumberOfEmployees: value not of required type: many",
                                   "fields": ["NumberOfEmployees"]}
    assert sandbox_server.store.records["Lead"][good]["Title"] == title


def test_given_lock_row_fault_when_patch_then_unable_to_lock_row_per_record(
        sf: Salesforce, sandbox_server: SandboxServer, faults: Faults) -> None:
    ids = lead_ids(sandbox_server, 40, skip=30)
    faults.p_lock_row = 0.5
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "Id": i, "Title": "Locked?"} for i in ids]})
    locked = [r for r in res if not r["success"]]
    assert 5 < len(locked) < 35
    assert locked[0] == {"id": None, "success": False, "errors": [{
        "statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access to this record", "fields": []}]}
    for rid, r in zip(ids, res, strict=True):
        assert (sandbox_server.store.records["Lead"][rid]["Title"] == "Locked?") == r["success"]


def test_given_too_many_records_when_patch_then_400(sf: Salesforce, sandbox_server: SandboxServer) -> None:
    rid = lead_ids(sandbox_server, 1, skip=0)[0]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "Id": rid, "Title": "x"}] * 201})
    assert err.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": []}) is None


def test_given_owner_set_when_clock_advances_then_world_draws_the_outcome(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    world = sandbox_server.world
    rid = next(i for i in sorted(world.truth) if world.truth[i].rep is None)
    rep = sorted(world.reps)[0]
    assert sf.Lead.update(rid, {"OwnerId": rep}) == 204
    assert sandbox_server.store.records["Lead"][rid]["OwnerId"] == rep
    sandbox_server.advance(0.01)
    assert world.truth[rid].rep == rep and world.truth[rid].converted is not None


def test_given_single_record_when_get_and_patch_then_204_and_errors_as_lists(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    rid = lead_ids(sandbox_server, 1, skip=80)[0]
    assert sf.Lead.update(rid, {"Description": "Budget approved, 200 seats"}) == 204
    got = sf.Lead.get(rid)
    assert got["Description"] == "Budget approved, 200 seats" and got["Id"] == rid
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Lead.update(rid, {"Nope__c": 1})
    assert err.value.content == [{"message": "No such column 'Nope__c' on sobject of type Lead",
                                  "errorCode": "INVALID_FIELD", "fields": []}]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.update("00Q999999999999AAA", {"Title": "x"})


def test_given_describe_limits_and_sobjects_when_called_then_shapes_and_usage(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert {"Id", "Email", "OwnerId", "IsConverted", "SystemModstamp"} <= set(fields)
    assert fields["OwnerId"]["referenceTo"] == ["User"] and not fields["SystemModstamp"]["updateable"]
    names = [o["name"] for o in sf.describe()["sobjects"]]
    assert names == ["Lead", "User", "Opportunity", "Profile", "PermissionSet", "FieldPermissions",
                     "PermissionSetAssignment", "PermissionSetGroup", "PermissionSetGroupComponent"]
    limits = sf.limits()
    used = sf.api_usage["api-usage"].used
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - used}


def test_given_concurrent_clients_when_patching_then_every_write_lands(sandbox_server: SandboxServer) -> None:
    ids = lead_ids(sandbox_server, 160, skip=200)
    chunks = [ids[i::4] for i in range(4)]

    def write(chunk: list[str]) -> list[bool]:
        client = login(sandbox_server.info, "password")  # one session per thread, as requests wants
        res = client.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "Id": i, "Description": f"seen {i}"} for i in chunk]})
        return [r["success"] for r in res]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(write, chunks))
    assert all(all(r) for r in results)
    assert all(sandbox_server.store.records["Lead"][i]["Description"] == f"seen {i}" for i in ids)
    stamps = [sandbox_server.store.records["Lead"][i]["SystemModstamp"] for i in ids]
    assert len(set(stamps)) == len(ids)  # each write got its own modstamp
