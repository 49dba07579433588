"""The error tables (shared rows + each CRM's), typed errors without secrets, and the retry policy (injected sleep)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from connectors.errors import Action, AuthError, CRMError, ErrorTable, Kind, StopCycle, redact
from connectors.hubspot.errors import HUBSPOT, from_hubspot
from connectors.retry import Retrier, RetryPolicy
from connectors.salesforce.errors import SALESFORCE, from_salesforce

TABLES: dict[str, ErrorTable] = {"salesforce": SALESFORCE, "hubspot": HUBSPOT}

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("crm", "status", "code", "action", "kind"), [
    ("salesforce", 401, "INVALID_SESSION_ID", Action.REFRESH, Kind.TRANSIENT),
    ("salesforce", 403, "REQUEST_LIMIT_EXCEEDED", Action.STOP_CYCLE, Kind.TRANSIENT),
    ("salesforce", 400, "INVALID_FIELD", Action.FAIL, Kind.CONFIG),
    ("salesforce", 400, "MALFORMED_QUERY", Action.FAIL, Kind.PERMANENT),
    ("salesforce", None, "UNABLE_TO_LOCK_ROW", Action.RETRY, Kind.TRANSIENT),
    ("salesforce", 503, "SERVER_UNAVAILABLE", Action.RETRY, Kind.TRANSIENT),
    ("salesforce", 403, "SOMETHING_ELSE", Action.FAIL, Kind.CONFIG),
    ("hubspot", 429, "TEN_SECONDLY_ROLLING", Action.RETRY, Kind.TRANSIENT),
    ("hubspot", 429, "DAILY", Action.STOP_CYCLE, Kind.TRANSIENT),
    ("hubspot", 401, "INVALID_AUTHENTICATION", Action.REFRESH, Kind.TRANSIENT),
    ("hubspot", 403, "MISSING_SCOPES", Action.FAIL, Kind.CONFIG),
    ("hubspot", 400, "VALIDATION_ERROR", Action.FAIL, Kind.PERMANENT),
    ("hubspot", 502, None, Action.RETRY, Kind.TRANSIENT),
    ("hubspot", 599, None, Action.RETRY, Kind.TRANSIENT),
    ("hubspot", 418, None, Action.FAIL, Kind.PERMANENT),
    ("hubspot", None, None, Action.FAIL, Kind.PERMANENT),  # nothing explains it: a bug to report
    ("salesforce", None, None, Action.FAIL, Kind.PERMANENT),
    ("salesforce", None, "DUPLICATE_DEVELOPER_NAME", Action.FAIL, Kind.PERMANENT),  # a Metadata component code
    ("salesforce", None, "SOME_NEW_COMPONENT_CODE", Action.FAIL, Kind.PERMANENT),
])
def test_the_one_table(crm: str, status: int | None, code: str | None, action: Action, kind: Kind) -> None:
    rule = TABLES[crm].classify(status, code)
    assert (rule.action, rule.kind) == (action, kind)


def test_given_token_like_text_when_redacted_then_no_secret_survives() -> None:
    text = ('Authorization: Bearer 00D5g000004AbCd!AQ8AQH.secret {"access_token": "abc123", "password":"hunter2"} '
            "pat-na1-0123abcd-aaaa client_secret=xyz")
    out = redact(text)
    for secret in ("AQ8AQH.secret", "abc123", "hunter2", "pat-na1-0123abcd", "xyz"):
        assert secret not in out
    assert len(redact("x" * 1000)) <= 301


def sf_exc(cls: type, status: int, body: Any) -> Exception:
    return cls("https://x/services/data/v59.0/query/", status, "query", body)  # type: ignore[no-any-return]


def test_given_salesforce_limit_exceeded_when_translated_then_stop_cycle_with_resume_time() -> None:
    err = from_salesforce(sf_exc(SalesforceRefusedRequest, 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                                                                  "message": "TotalRequests Limit exceeded."}]), "query", NOW)
    assert isinstance(err, StopCycle) and err.code == "REQUEST_LIMIT_EXCEEDED"
    assert err.resume_at is not None and err.resume_at > NOW and "resume after" in str(err)


def test_given_salesforce_errors_when_translated_then_code_and_status_are_kept() -> None:
    err = from_salesforce(sf_exc(SalesforceMalformedRequest, 400, [{"errorCode": "INVALID_FIELD",
                                                                     "message": "No such column 'X__c'"}]), "query", NOW)
    assert (err.status, err.code, err.kind) == (400, "INVALID_FIELD", Kind.CONFIG)
    assert "init-crm" in str(err) and "X__c" in str(err)
    assert isinstance(from_salesforce(sf_exc(SalesforceExpiredSession, 401, [{"errorCode": "INVALID_SESSION_ID"}]),
                                      "q", NOW), AuthError)
    # a metadata (zeep) failure is a plain exception "(CODE, message)"
    md = from_salesforce(Exception("\nLead.X__c: (INSUFFICIENT_ACCESS, no permission), "), "createMetadata", NOW)
    assert (md.code, md.kind) == ("INSUFFICIENT_ACCESS", Kind.CONFIG)


class FakeApiException(Exception):
    """The shape of hubspot-api-client's per-package ApiException (status, reason, body, headers)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.reason, self.body, self.headers = status, "x", body, headers or {}


def test_given_hubspot_rate_limits_when_translated_then_burst_waits_and_daily_stops() -> None:
    burst = from_hubspot(FakeApiException(429, b'{"policyName":"TEN_SECONDLY_ROLLING","message":"limit"}',
                                          {"Retry-After": "3"}), "search", NOW)
    assert (burst.action, burst.retry_after) == (Action.RETRY, 3.0)
    no_header = from_hubspot(FakeApiException(429, b'{"policyName":"TEN_SECONDLY_ROLLING"}'), "search", NOW)
    assert no_header.retry_after == 10.0
    daily = from_hubspot(FakeApiException(429, b'{"policyName":"DAILY","message":"daily"}'), "search", NOW)
    assert isinstance(daily, StopCycle) and daily.resume_at == datetime(2026, 1, 6, tzinfo=UTC)
    assert from_hubspot(ConnectionError("reset"), "search", NOW).action is Action.RETRY


def _retrier(sleeps: list[float], refresh: Any = None, policy: RetryPolicy | None = None) -> Retrier:
    return Retrier(policy or RetryPolicy(), lambda e, op: from_hubspot(e, op, NOW), sleeps.append,
                   random.Random(1), refresh=refresh)


def flaky(failures: list[Exception], value: str = "ok") -> Any:
    def fn() -> str:
        if failures:
            raise failures.pop(0)
        return value
    return fn


def test_given_transient_faults_when_called_then_retried_with_growing_jittered_waits_honouring_retry_after() -> None:
    sleeps: list[float] = []
    fails = [FakeApiException(503, b"{}"), FakeApiException(502, b"{}"),
             FakeApiException(429, b'{"policyName":"TEN_SECONDLY_ROLLING"}', {"Retry-After": "7"})]
    assert _retrier(sleeps).call("search", flaky(fails)) == "ok"
    assert len(sleeps) == 3 and sleeps[0] <= 0.5 and sleeps[1] <= 1.0 and sleeps[2] >= 7.0


def test_given_a_fault_that_never_clears_when_called_then_bounded_attempts_then_raises() -> None:
    sleeps: list[float] = []
    fails: list[Exception] = [FakeApiException(503, b"{}") for _ in range(20)]
    with pytest.raises(CRMError) as info:
        _retrier(sleeps, policy=RetryPolicy(max_attempts=4)).call("search", flaky(fails))
    assert len(sleeps) == 3 and info.value.status == 503


def test_given_retry_after_beyond_the_total_budget_when_called_then_gives_up_without_sleeping() -> None:
    sleeps: list[float] = []
    fails: list[Exception] = [FakeApiException(429, b"{}", {"Retry-After": "500"})]
    with pytest.raises(CRMError):
        _retrier(sleeps, policy=RetryPolicy(max_total_delay=60)).call("x", flaky(fails))
    assert sleeps == []


def test_given_permanent_or_stop_cycle_faults_when_called_then_raised_at_once() -> None:
    sleeps: list[float] = []
    with pytest.raises(StopCycle):
        _retrier(sleeps).call("x", flaky([FakeApiException(429, b'{"policyName":"DAILY"}')]))
    with pytest.raises(CRMError) as info:
        _retrier(sleeps).call("x", flaky([FakeApiException(400, b'{"category":"VALIDATION_ERROR"}')]))
    assert sleeps == [] and info.value.kind is Kind.PERMANENT


def test_given_401_when_a_refresh_exists_then_refreshed_and_retried_else_config_error() -> None:
    calls: list[str] = []
    sleeps: list[float] = []
    assert _retrier(sleeps, refresh=lambda: calls.append("r")).call(
        "x", flaky([FakeApiException(401, b'{"category":"INVALID_AUTHENTICATION"}')])) == "ok"
    assert calls == ["r"] and sleeps == []
    with pytest.raises(AuthError, match="cannot refresh") as info:
        _retrier(sleeps).call("x", flaky([FakeApiException(401, b'{"category":"INVALID_AUTHENTICATION"}')]))
    assert info.value.kind is Kind.CONFIG


def test_given_tokens_that_keep_failing_when_refreshing_then_stops_after_the_bound() -> None:
    calls: list[str] = []
    fails: list[Exception] = [FakeApiException(401, b"{}") for _ in range(10)]
    with pytest.raises(AuthError, match="keeps rejecting"):
        _retrier([], refresh=lambda: calls.append("r")).call("x", flaky(fails))
    assert len(calls) == 2


def test_policy_delay_is_seeded_and_capped() -> None:
    p = RetryPolicy(base_delay=1, max_delay=5)
    a = [p.delay(n, random.Random(3)) for n in range(8)]
    assert a == [p.delay(n, random.Random(3)) for n in range(8)]
    assert all(0 <= d <= 5 for d in a) and p.delay(0, random.Random(3), retry_after=9) == 9
