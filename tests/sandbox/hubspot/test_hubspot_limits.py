"""HubSpot authentication, rate limits and injected faults, as the real client sees them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException
from hubspot.crm.contacts.exceptions import UnauthorizedException

from sandbox.context import Faults
from sandbox.hubspot.api import state
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


def _get_page(hs: HubSpot) -> object:
    return hs.crm.contacts.basic_api.get_page(limit=1)


def test_given_a_wrong_token_then_401_with_hubspots_body(sandbox_server: SandboxServer) -> None:
    info = sandbox_server.info
    bad = HubSpot(access_token="pat-na1-wrong", host=info["hubspot"]["host"], ssl_ca_cert=info["ca_cert"])
    with pytest.raises(UnauthorizedException) as exc:
        _get_page(bad)
    body = json.loads(exc.value.body)
    assert exc.value.status == 401
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found.") and body["correlationId"]


def test_rate_limit_headers_on_ordinary_calls(hs: HubSpot, faults: Faults) -> None:
    faults.hs_daily_limit = 1000
    _, _, headers = hs.crm.contacts.basic_api.get_page_with_http_info(limit=1)
    assert headers["X-HubSpot-RateLimit-Daily"] == "1000"
    assert int(headers["X-HubSpot-RateLimit-Daily-Remaining"]) < 1000
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"


def test_given_the_burst_limit_when_exceeded_then_429_ten_secondly_until_the_window_rolls(
        hs: HubSpot, faults: Faults, fake_monotonic: Any) -> None:
    faults.hs_burst_limit = 3
    for _ in range(3):
        _get_page(hs)
    with pytest.raises(ApiException) as exc:
        _get_page(hs)
    body = json.loads(exc.value.body)
    assert exc.value.status == 429
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert exc.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in exc.value.headers  # as the real API: the client must back off itself
    fake_monotonic.now += 10.5  # the window rolls past the three calls
    _get_page(hs)


def test_given_the_daily_limit_spent_then_429_daily_until_the_simulated_day_changes(
        sandbox_server: SandboxServer, hs: HubSpot, faults: Faults) -> None:
    st = state(sandbox_server.ctx)
    faults.hs_daily_limit = st.day_calls + 2 if st.day == sandbox_server.store.clock.now().date() else 2
    _get_page(hs)
    _get_page(hs)
    with pytest.raises(ApiException) as exc:
        _get_page(hs)
    assert exc.value.status == 429 and json.loads(exc.value.body)["policyName"] == "DAILY"
    sandbox_server.advance(1)
    _get_page(hs)


def test_given_p_429_of_one_then_every_call_is_refused(hs: HubSpot, faults: Faults) -> None:
    faults.p_429 = 1.0
    with pytest.raises(ApiException) as exc:
        _get_page(hs)
    assert exc.value.status == 429 and json.loads(exc.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"


def test_given_p_5xx_of_one_then_503(hs: HubSpot, faults: Faults) -> None:
    faults.p_5xx = 1.0
    with pytest.raises(ApiException) as exc:
        _get_page(hs)
    assert exc.value.status == 503
