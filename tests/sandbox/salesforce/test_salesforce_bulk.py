"""Bulk API 2.0 ingest and query jobs through simple-salesforce's ``sf.bulk2`` (``wait=0``:
the sandbox's jobs report ``InProgress`` once, so the client's poll sleeps about 1 ms)."""

from __future__ import annotations

import csv
import io

import pytest
from sf_client import login
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceOperationError,
)

from sandbox.context import Faults
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sf(sandbox_server: SandboxServer) -> Salesforce:
    return login(sandbox_server.info, "password")


def open_leads(server: SandboxServer, n: int, skip: int) -> list[str]:
    ids = sorted(i for i, r in server.store.records["Lead"].items() if not r["IsConverted"])
    return ids[skip:skip + n]


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_given_records_when_bulk_update_then_applied_by_column_name(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    ids = open_leads(sandbox_server, 3, skip=0)
    leads = sandbox_server.store.records["Lead"]
    title_before = leads[ids[1]]["Title"]
    records = [{"Id": ids[0], "Title": "Head of Data", "NumberOfEmployees": "120"},
               {"Id": ids[1], "Title": "", "NumberOfEmployees": "7"},  # empty cell: Title unchanged
               {"Id": ids[2], "Title": "#N/A", "NumberOfEmployees": "9"}]  # #N/A: Title set to null
    result = sf.bulk2.Lead.update(records=records, wait=0)
    assert result[0]["numberRecordsProcessed"] == 3 and result[0]["numberRecordsFailed"] == 0
    assert (leads[ids[0]]["Title"], leads[ids[0]]["NumberOfEmployees"]) == ("Head of Data", 120)
    assert leads[ids[1]]["Title"] == title_before and leads[ids[1]]["NumberOfEmployees"] == 7
    assert leads[ids[2]]["Title"] is None
    ok = rows(sf.bulk2.Lead.get_successful_records(result[0]["job_id"]))
    assert [(r["sf__Id"], r["sf__Created"]) for r in ok] == [(i, "false") for i in ids]


def test_given_bad_rows_when_bulk_update_then_failed_results_name_each(
        sf: Salesforce, sandbox_server: SandboxServer, faults: Faults) -> None:
    ids = open_leads(sandbox_server, 2, skip=10)
    result = sf.bulk2.Lead.update(records=[{"Id": ids[0], "NumberOfEmployees": "lots"},
                                           {"Id": "00Q999999999999AAA", "NumberOfEmployees": "1"},
                                           {"Id": ids[1], "NumberOfEmployees": "2"}], wait=0)
    assert (result[0]["numberRecordsProcessed"], result[0]["numberRecordsFailed"]) == (3, 2)
    failed = rows(sf.bulk2.Lead.get_failed_records(result[0]["job_id"]))
    assert [r["sf__Error"].split(":")[0] for r in failed] == ["INVALID_TYPE_ON_FIELD_IN_RECORD",
                                                              "INVALID_CROSS_REFERENCE_KEY"]
    assert failed[0]["Id"] == ids[0] and failed[0]["NumberOfEmployees"] == "lots"


def test_given_lock_row_fault_when_bulk_update_then_rows_fail_with_unable_to_lock_row(
        sf: Salesforce, sandbox_server: SandboxServer, faults: Faults) -> None:
    faults.p_lock_row = 1.0
    ids = open_leads(sandbox_server, 2, skip=20)
    result = sf.bulk2.Lead.update(records=[{"Id": i, "Title": "x"} for i in ids], wait=0)
    assert result[0]["numberRecordsFailed"] == 2
    failed = rows(sf.bulk2.Lead.get_failed_records(result[0]["job_id"]))
    assert {r["sf__Error"] for r in failed} == {"UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--"}


def test_given_unknown_column_when_bulk_update_then_job_fails_and_client_raises(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    rid = open_leads(sandbox_server, 1, skip=30)[0]
    with pytest.raises(SalesforceOperationError, match="InvalidBatch : Field name not found : Nope__c"):
        sf.bulk2.Lead.update(records=[{"Id": rid, "Nope__c": "1"}], wait=0)


def test_given_query_job_when_paged_then_locator_walks_all_results(
        sf: Salesforce, sandbox_server: SandboxServer) -> None:
    total = sum(1 for r in sandbox_server.store.records["Lead"].values() if r["IsConverted"])
    pages = list(sf.bulk2.Lead.query("SELECT Id, ConvertedOpportunityId, CreatedDate FROM Lead "
                                     "WHERE IsConverted = true ORDER BY CreatedDate", max_records=10, wait=0))
    got = [r for page in pages for r in rows(page)]
    assert len(pages) == -(-total // 10) and len(got) == total
    assert all(r["ConvertedOpportunityId"].startswith("006") for r in got)
    assert got[0]["CreatedDate"].endswith("Z")  # Bulk CSV prints UTC with a Z


def test_given_bad_soql_when_query_job_created_then_malformed_request(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        list(sf.bulk2.Lead.query("SELECT Id FROM Lead WHERE Nope__c = 1", wait=0))
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_given_expired_token_when_bulk_call_then_expired_session(
        sandbox_server: SandboxServer, faults: Faults) -> None:
    faults.token_expiry_after_calls = 1
    fresh = login(sandbox_server.info, "password")
    fresh.query("SELECT Id FROM User LIMIT 1")  # the token's one call
    with pytest.raises(SalesforceExpiredSession):  # bulk2 has no re-login of its own
        list(fresh.bulk2.Lead.query("SELECT Id FROM Lead", wait=0))
