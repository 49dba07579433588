"""Errors classified by what they are (both CRMs' tables): only transport failures are "network";
Metadata per-component codes by code; an unknown exception is a bug to report, never retried;
and a refused Salesforce login says what is wrong and what to do."""

from __future__ import annotations

import random
import ssl
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import urllib3
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from zeep.exceptions import Fault

from connectors.errors import Action, AuthError, CRMError, Kind
from connectors.hubspot.errors import from_hubspot
from connectors.retry import Retrier, RetryPolicy
from connectors.salesforce.errors import from_salesforce, login_failure
from connectors.salesforce.session import build_session, login
from connectors.salesforce.settings import SalesforceClientCredentials, SalesforcePassword, SalesforceSettings
from connectors.usage import UsageMeter

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
TRANSLATE = {"salesforce": from_salesforce, "hubspot": from_hubspot}

TRANSPORT = [
    requests.exceptions.ConnectionError("connection refused"),
    requests.exceptions.ReadTimeout("read timed out (read timeout=60)"),
    requests.exceptions.ConnectTimeout("connect timed out"),
    requests.exceptions.SSLError("handshake failure"),
    ssl.SSLError("TLSV1_ALERT_UNKNOWN_CA"),
    urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
    ConnectionResetError("reset by peer"),
    TimeoutError("timed out"),
]
NOT_TRANSPORT = [FileNotFoundError("/etc/leadpilot/salesforce.key"), PermissionError("denied"),
                 ValueError("a parse error"), KeyError("records"), RuntimeError("boom")]


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
@pytest.mark.parametrize("exc", TRANSPORT, ids=lambda e: type(e).__name__)
def test_given_a_transport_failure_then_network_and_retried(crm: str, exc: Exception) -> None:
    err = TRANSLATE[crm](exc, "query", NOW)
    assert (err.action, err.kind, err.rule.hint) == (Action.RETRY, Kind.TRANSIENT, "connection failed or timed out")


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
@pytest.mark.parametrize("exc", NOT_TRANSPORT, ids=lambda e: type(e).__name__)
def test_given_an_unknown_exception_then_a_bug_to_report_and_never_retried(crm: str, exc: Exception) -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(), lambda e, op: TRANSLATE[crm](e, op, NOW), sleeps.append, random.Random(1))
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise exc

    with pytest.raises(CRMError) as caught:
        retrier.call("query", fail)
    assert (caught.value.action, caught.value.kind) == (Action.FAIL, Kind.PERMANENT)
    assert "please report it" in str(caught.value) and type(exc).__name__ in str(caught.value)
    assert calls == [1] and sleeps == []


def test_given_a_metadata_component_error_then_classified_by_its_code_at_once() -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(), lambda e, op: from_salesforce(e, op, NOW), sleeps.append, random.Random(1))
    calls: list[int] = []

    def create() -> None:  # what simple-salesforce raises for a failed SaveResult
        calls.append(1)
        raise Exception("\nLead.LeadPilot_Score__c: (DUPLICATE_DEVELOPER_NAME, There is already a field named "
                        "LeadPilot_Score on Lead.), ")

    with pytest.raises(CRMError) as caught:
        retrier.call("createMetadata", create)
    assert caught.value.code == "DUPLICATE_DEVELOPER_NAME" and caught.value.action is Action.FAIL
    assert calls == [1] and sleeps == []  # not six attempts with backoff


def test_given_a_soap_fault_then_its_code_decides() -> None:
    expired = from_salesforce(Fault("INVALID_SESSION_ID: Invalid Session ID found in SessionHeader",
                                    code="sf:INVALID_SESSION_ID"), "readMetadata", NOW)
    assert isinstance(expired, AuthError) and expired.action is Action.REFRESH
    denied = from_salesforce(Fault("INSUFFICIENT_ACCESS: insufficient access rights", code="sf:INSUFFICIENT_ACCESS"),
                             "createMetadata", NOW)
    assert (denied.code, denied.kind) == ("INSUFFICIENT_ACCESS", Kind.CONFIG)


def _settings(auth: Any, domain: str = "login") -> SalesforceSettings:
    return SalesforceSettings(auth=auth, domain=domain)


@pytest.mark.parametrize(("auth", "code", "desc", "says"), [
    (SalesforcePassword(username="int@acme.com", password="pw"), "invalid_grant", "authentication failure",
     ["refused the password of int@acme.com", "LEADPILOT_SALESFORCE__AUTH__PASSWORD", "SECURITY_TOKEN"]),
    (SalesforcePassword(username="int@acme.com", password="pw"), "INVALID_LOGIN", "Invalid username, password",
     ["refused the password"]),
    (None, "invalid_client_id", "client identifier invalid", ["LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY"]),
    (None, "invalid_client", "invalid client credentials", ["LEADPILOT_SALESFORCE__AUTH__CONSUMER_SECRET"]),
    (SalesforceClientCredentials(consumer_key="k", consumer_secret="s"), "invalid_grant",
     "request not supported on this domain", ["needs the org's My Domain", "LEADPILOT_SALESFORCE__DOMAIN"]),
])
def test_given_a_refused_login_then_what_is_wrong_and_what_to_do(auth: Any, code: str, desc: str,
                                                                   says: list[str]) -> None:
    err = login_failure(auth, code, desc)
    text = str(err)
    for part in says:
        assert part in text
    assert err.action is Action.FAIL and err.kind is Kind.CONFIG
    assert "Response content" not in text and "status None" not in text and "pw" not in text.split()


def test_given_client_credentials_on_the_generic_login_host_then_my_domain_is_named() -> None:
    settings = _settings(SalesforceClientCredentials(consumer_key="k", consumer_secret="s3cret"), domain="login")
    with pytest.raises(AuthError) as caught:  # fails before any request: simple-salesforce's INVALID AUTH
        login(settings, build_session(settings, UsageMeter()))
    text = str(caught.value)
    assert "client-credentials flow needs the org's My Domain" in text and "LEADPILOT_SALESFORCE__DOMAIN" in text
    assert "s3cret" not in text and "INVALID AUTH" not in text


def test_given_the_client_raises_authentication_failed_then_translated_without_its_template() -> None:
    err = from_salesforce(SalesforceAuthenticationFailed("invalid_grant", "authentication failure"), "login", NOW)
    assert isinstance(err, AuthError) and "Response content" not in str(err) and err.action is Action.FAIL
