"""Salesforce login flows, expired sessions and the daily API budget, through the real
simple-salesforce client against the sandbox over HTTPS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest
from sf_client import login, rsa_key_pair, sandbox_session
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)

from sandbox.context import Faults
from sandbox.http import Request
from sandbox.salesforce import api as salesforce
from sandbox.salesforce import oauth as sf_oauth
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def jwt_key(sandbox_server: SandboxServer) -> Iterator[bytes]:
    """A private key whose public half the sandbox's connected app trusts."""
    private, public = rsa_key_pair()
    sandbox_server.ctx.credentials.jwt_public_key_pem = public
    yield private
    sandbox_server.ctx.credentials.jwt_public_key_pem = None


@pytest.mark.parametrize("flow", ["password", "client_credentials", "jwt", "soap", "direct"])
def test_given_each_login_flow_when_logging_in_then_queries_reach_the_sandbox(
        sandbox_server: SandboxServer, jwt_key: bytes, flow: str) -> None:
    sf = login(sandbox_server.info, flow, private_key=jwt_key)
    assert sf.sf_instance == sandbox_server.base_url.removeprefix("https://")
    result = sf.query("SELECT COUNT() FROM Lead")
    assert result["totalSize"] == len(sandbox_server.store.records["Lead"]) and result["records"] == []
    usage = sf.api_usage["api-usage"]
    assert usage.total == sandbox_server.ctx.faults.sf_daily_budget and usage.used >= 1


def test_given_token_response_when_password_login_then_it_has_the_real_fields(sandbox_server: SandboxServer) -> None:
    cred = sandbox_server.info["salesforce"]
    resp = sandbox_session(sandbox_server.info).post(
        "https://login.salesforce.com/services/oauth2/token",
        data={"grant_type": "password", "client_id": cred["client_id"], "client_secret": cred["client_secret"],
              "username": cred["username"], "password": cred["password"] + cred["security_token"]})
    body = resp.json()
    assert resp.status_code == 200
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert body["instance_url"] == sandbox_server.base_url and body["token_type"] == "Bearer"
    assert body["id"].startswith(f"{sandbox_server.base_url}/id/00D")


@pytest.mark.parametrize(("change", "error"), [
    ({"password": "wrong"}, "authentication failure"),
    ({"consumer_secret": "wrong"}, "invalid client credentials"),
    ({"consumer_key": "wrong"}, "client identifier invalid"),
])
def test_given_bad_credentials_when_password_login_then_authentication_failed(
        sandbox_server: SandboxServer, change: dict[str, str], error: str) -> None:
    cred = sandbox_server.info["salesforce"]
    args = {"username": cred["username"], "password": cred["password"], "consumer_key": cred["client_id"],
            "consumer_secret": cred["client_secret"], **change}
    with pytest.raises(SalesforceAuthenticationFailed, match=error):
        Salesforce(session=sandbox_session(sandbox_server.info), **args)


def test_given_wrong_soap_password_when_logging_in_then_invalid_login(sandbox_server: SandboxServer) -> None:
    cred = sandbox_server.info["salesforce"]
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        Salesforce(username=cred["username"], password="nope", security_token=cred["security_token"],
                   session=sandbox_session(sandbox_server.info))


def test_given_untrusted_key_when_jwt_login_then_invalid_assertion(sandbox_server: SandboxServer, jwt_key: bytes) -> None:
    other, _ = rsa_key_pair()
    with pytest.raises(SalesforceAuthenticationFailed, match="invalid assertion"):
        login(sandbox_server.info, "jwt", private_key=other)


def _jwt_request(key: bytes, **claims: object) -> Request:
    body = f"grant_type={sf_oauth.JWT_GRANT}&assertion={jwt.encode(claims, key, algorithm='RS256')}"
    return Request.build("POST", "/services/oauth2/token", {}, body.encode())


@pytest.mark.parametrize(("claims", "error"), [
    ({"exp": f"{time.time() - 10:.0f}"}, "expired authorization code"),
    ({"aud": "https://evil.example.com"}, "audience is invalid"),
    ({"iss": "someone-else"}, "client identifier invalid"),
    ({"sub": "nobody@example.com"}, "user hasn't approved this consumer"),
    ({"exp": "soon"}, "invalid assertion"),
])
def test_given_bad_jwt_claims_when_token_requested_then_refused(
        sandbox_server: SandboxServer, jwt_key: bytes, claims: dict[str, str], error: str) -> None:
    # The real client always signs good claims, so these go straight to the token handler.
    cred = sandbox_server.info["salesforce"]
    good = {"iss": cred["client_id"], "sub": cred["username"], "aud": "https://login.salesforce.com",
            "exp": f"{time.time() + 180:.0f}"}
    resp = sf_oauth.token(sandbox_server.ctx, _jwt_request(jwt_key, **{**good, **claims}))
    assert resp.status == 400 and error in resp.body.decode()
    ok = sf_oauth.token(sandbox_server.ctx, _jwt_request(jwt_key, **good))
    assert ok.status == 200


def test_given_tokens_expire_when_client_logged_in_itself_then_it_relogs_in(
        sandbox_server: SandboxServer, faults: Faults) -> None:
    sf = login(sandbox_server.info, "password")
    faults.token_expiry_after_calls = 2
    first = sf.session_id
    for _ in range(5):  # 5 calls with tokens dying after 2: the client must log in again twice
        assert sf.query("SELECT Id FROM User WHERE IsActive = true LIMIT 1")["totalSize"] == 1
    assert sf.session_id != first


def test_given_token_expires_when_direct_mode_then_expired_session_list_body(
        sandbox_server: SandboxServer, faults: Faults) -> None:
    sf = Salesforce(instance_url=sandbox_server.base_url, session_id=sandbox_server.ctx.issue_token(),
                    session=sandbox_session(sandbox_server.info))
    faults.token_expiry_after_calls = 1
    sf.query("SELECT Id FROM User LIMIT 1")
    with pytest.raises(SalesforceExpiredSession) as err:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert err.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_given_daily_budget_spent_when_calling_then_request_limit_exceeded_until_a_day_passes(
        sandbox_server: SandboxServer, faults: Faults) -> None:
    sf = login(sandbox_server.info, "password")
    sf.query("SELECT Id FROM User LIMIT 1")
    used = sf.api_usage["api-usage"].used
    faults.sf_daily_budget = used + 1
    sf.query("SELECT Id FROM User LIMIT 1")
    assert sf.api_usage["api-usage"] == (used + 1, used + 1)
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert err.value.status == 403
    assert err.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    sandbox_server.advance(1.01)  # the budget is a rolling 24 h on the simulated clock
    sf.query("SELECT Id FROM User LIMIT 1")
    assert sf.api_usage["api-usage"].used == 1
    assert salesforce.api_usage(sandbox_server.ctx) == 1
