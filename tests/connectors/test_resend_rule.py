"""One rule for which per-record write errors are sent again: ``ErrorTable.worth_resending``.

Both connectors (Salesforce sObject Collections and Bulk 2.0, HubSpot batch update) mark a
failed record transient exactly when its code's rule says ``retry``. No server: the batch
call (the connectors' own ``_call``) answers with the CRM's documented per-record shapes.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.errors import Action, ErrorTable, Kind
from connectors.hubspot.errors import HUBSPOT
from connectors.records import LeadUpdate
from connectors.salesforce.bulk import ingest_update
from connectors.salesforce.errors import SALESFORCE
from sync.config.settings import Settings
from sync.wiring.connector import make_connector


@pytest.mark.parametrize(("table", "code", "resend"), [
    (SALESFORCE, "UNABLE_TO_LOCK_ROW", True),
    (SALESFORCE, "SERVER_UNAVAILABLE", True),
    (SALESFORCE, "REQUEST_LIMIT_EXCEEDED", False),  # stop_cycle: the batch call raises it
    (SALESFORCE, "INVALID_SESSION_ID", False),  # refresh: the batch call raises it
    (SALESFORCE, "FIELD_CUSTOM_VALIDATION_EXCEPTION", False),  # not in the table
    (HUBSPOT, "TEN_SECONDLY_ROLLING", True),
    (HUBSPOT, "DAILY", False),  # kind transient, action stop_cycle: no longer resent
    (HUBSPOT, "INVALID_AUTHENTICATION", False),  # kind transient, action refresh: no longer resent
    (HUBSPOT, "VALIDATION_ERROR", False),
])
def test_given_a_per_record_code_when_asked_then_resent_only_if_its_rule_says_retry(
        table: ErrorTable, code: str, resend: bool) -> None:
    assert table.worth_resending(code) is resend
    rule = table.code_rule(code)
    assert resend is (rule is not None and rule.action is Action.RETRY)


def test_given_hubspot_refresh_and_stop_rows_then_their_kind_alone_would_have_resent_them() -> None:
    # the old HubSpot rule (kind is transient) and the shared one (action is retry) differ here
    for code in ("DAILY", "INVALID_AUTHENTICATION"):
        assert HUBSPOT.classify(None, code).kind is Kind.TRANSIENT and not HUBSPOT.worth_resending(code)


def _hubspot_error(category: str, lead_id: str) -> dict[str, Any]:
    return {"status": "error", "category": category, "message": f"{category} for {lead_id}",
            "context": {"ids": [lead_id]}}


def test_given_a_hubspot_207_when_writing_then_per_record_errors_follow_the_shared_rule() -> None:
    hs: Any = make_connector(Settings(_env_file=None, crm="hubspot", hubspot={"access_token": "pat-na1-x"}))
    codes = {"1": "TEN_SECONDLY_ROLLING", "2": "DAILY", "3": "INVALID_AUTHENTICATION", "4": "VALIDATION_ERROR"}
    page = {"status": "COMPLETE", "results": [{"id": "5"}],
            "errors": [_hubspot_error(code, lead) for lead, code in codes.items()]}
    hs._call = lambda kind, operation, fn: page
    results = hs._send([LeadUpdate(x, score=1) for x in ("1", "2", "3", "4", "5")])
    assert [(r.lead_id, r.ok, r.transient) for r in results] == [
        ("1", False, True), ("2", False, False), ("3", False, False), ("4", False, False), ("5", True, False)]
    assert all(r.transient is HUBSPOT.worth_resending(codes[r.lead_id]) for r in results[:4])


def _salesforce() -> Any:
    auth = {"kind": "token", "access_token": "00Dx!y", "instance_url": "https://x"}
    return make_connector(Settings(_env_file=None, crm="salesforce", salesforce={"auth": auth}))


def test_given_salesforce_save_results_when_writing_then_per_record_errors_follow_the_shared_rule() -> None:
    sf = _salesforce()
    codes = ["UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    saved = [{"success": False, "errors": [{"statusCode": c, "message": c.lower()}]} for c in codes]
    sf._call = lambda operation, fn: [*saved, {"success": True}]
    ids = ["00Q000000000001AAA", "00Q000000000002AAA", "00Q000000000003AAA", "00Q000000000004AAA"]
    results = sf._send_collection([LeadUpdate(x, score=1) for x in ids])
    assert [(r.ok, r.error_code, r.transient) for r in results] == [
        (False, "UNABLE_TO_LOCK_ROW", True), (False, "REQUEST_LIMIT_EXCEEDED", False),
        (False, "FIELD_CUSTOM_VALIDATION_EXCEPTION", False), (True, None, False)]


def test_given_bulk_results_when_ingesting_then_failed_rows_follow_the_same_rule() -> None:
    answers: dict[str, list[Any]] = {
        "bulk2 create job": [{"id": "750x"}], "bulk2 upload": [None], "bulk2 close job": [None],
        "bulk2 poll": [{"state": "JobComplete"}],
        "bulk2 results": ['"sf__Id","sf__Created","Id"\n"L4","false","L4"\n',
                          '"sf__Id","sf__Error","Id"\n"","UNABLE_TO_LOCK_ROW:locked:--","L1"\n'
                          '"","REQUEST_LIMIT_EXCEEDED:limit:--","L2"\n"","INVALID_FIELD:bad:--","L3"\n',
                          '"Id"\n'],
    }

    def call(operation: str, fn: Any) -> Any:
        return answers[operation].pop(0)

    rows = [{"Id": x, "LeadPilot_Score__c": "1"} for x in ("L1", "L2", "L3", "L4")]
    results = ingest_update(lambda: None, rows, ["Id", "LeadPilot_Score__c"], call, lambda s: None)  # type: ignore[arg-type,return-value]
    assert [(r.lead_id, r.ok, r.error_code, r.transient) for r in results] == [
        ("L1", False, "UNABLE_TO_LOCK_ROW", True), ("L2", False, "REQUEST_LIMIT_EXCEEDED", False),
        ("L3", False, "INVALID_FIELD", False), ("L4", True, None, False)]
