"""HubSpot search limits, token scopes, introspection and held responses, through the real client."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest

from sandbox.hubspot.auth import ALL_SCOPES, add_token
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


def _client(server: SandboxServer, token: str) -> HubSpot:
    return HubSpot(access_token=token, host=server.info["hubspot"]["host"], ssl_ca_cert=server.info["ca_cert"])


def _body(exc: Any) -> dict[str, Any]:
    return json.loads(exc.value.body)  # type: ignore[no-any-return]


def _assert_hubspot_error(body: dict[str, Any], category: str) -> None:
    assert body["status"] == "error" and body["category"] == category
    assert body["message"] and body["correlationId"]


def test_given_two_sorting_rules_then_400_validation_error(hs: HubSpot) -> None:
    sorts = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"},
             {"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(sorts=sorts, limit=10))
    assert exc.value.status == 400
    body = _body(exc)
    _assert_hubspot_error(body, "VALIDATION_ERROR")
    assert "1 sorting rule" in body["message"]
    one = hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(sorts=sorts[:1], limit=10))
    assert len(one.results) == 10


@pytest.mark.parametrize(("groups", "words"), [
    ([{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "0"}]}] * 6, "filter groups"),
    ([{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": str(i)} for i in range(11)]}],
     "per group"),
    ([{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": str(i)} for i in range(9)]}] * 3,
     "in all"),
])
def test_given_filters_over_the_limits_then_400_validation_error(hs: HubSpot, groups: list[Any], words: str) -> None:
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(filter_groups=groups, limit=10))
    assert exc.value.status == 400
    body = _body(exc)
    _assert_hubspot_error(body, "VALIDATION_ERROR")
    assert words in body["message"]


def test_given_records_tying_on_the_sort_then_they_do_not_come_in_id_order(sandbox_server: SandboxServer,
                                                                           hs: HubSpot) -> None:
    """The order of ties is undefined on the real API; the sandbox makes it visibly not the id order."""
    sorts = [{"propertyName": "industry", "direction": "ASCENDING"}]
    page = hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(sorts=sorts, limit=100,
                                                                          properties=["industry"]))
    runs: dict[str, list[int]] = {}
    for r in page.results:
        runs.setdefault(r.properties["industry"], []).append(int(r.id))
    assert any(ids != sorted(ids) for ids in runs.values() if len(ids) > 2)


def test_given_a_token_without_a_scope_then_403_missing_scopes_naming_it(sandbox_server: SandboxServer) -> None:
    scopes = [s for s in ALL_SCOPES if s != "crm.objects.contacts.write"]
    key = add_token(sandbox_server.ctx, {"kind": "service_key", "scopes": scopes})["token"]
    hs = _client(sandbox_server, key)
    assert hs.crm.contacts.basic_api.get_page(limit=1).results  # what it holds works
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.batch_api.update({"inputs": []})
    assert exc.value.status == 403
    body = _body(exc)
    _assert_hubspot_error(body, "MISSING_SCOPES")
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.write"]
    assert body["links"]["scopes"].startswith("https://developers.hubspot.com/")


def test_given_an_owners_call_without_its_scope_then_403(sandbox_server: SandboxServer) -> None:
    key = add_token(sandbox_server.ctx, {"kind": "service_key", "scopes": ["crm.objects.contacts.read"]})["token"]
    with pytest.raises(Exception) as exc:
        _client(sandbox_server, key).crm.owners.owners_api.get_page(limit=1)
    assert getattr(exc.value, "status", None) == 403
    assert _body(exc)["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.owners.read"]


def _token_info(server: SandboxServer, token: str) -> tuple[int, dict[str, Any]]:
    http = urllib3.PoolManager(ca_certs=server.info["ca_cert"])
    resp = http.request("POST", server.base_url + "/oauth/v2/private-apps/get/access-token-info",
                        body=json.dumps({"tokenKey": token}), headers={"Content-Type": "application/json"})
    return resp.status, json.loads(resp.data)


def test_given_a_private_app_token_then_introspection_answers_its_scopes(sandbox_server: SandboxServer) -> None:
    pat = add_token(sandbox_server.ctx, {"kind": "private_app", "scopes": ["crm.objects.contacts.read"]})["token"]
    status, info = _token_info(sandbox_server, pat)
    assert status == 200 and info["scopes"] == ["crm.objects.contacts.read"]
    assert {"userId", "hubId", "appId"} <= set(info)
    status, info = _token_info(sandbox_server, sandbox_server.info["hubspot"]["access_token"])
    assert status == 200 and set(info["scopes"]) == set(ALL_SCOPES)


def test_given_a_service_key_or_an_unknown_token_then_introspection_refuses(sandbox_server: SandboxServer) -> None:
    key = add_token(sandbox_server.ctx, {"kind": "service_key"})["token"]
    status, body = _token_info(sandbox_server, key)
    assert status == 400
    _assert_hubspot_error(body, "VALIDATION_ERROR")
    status, body = _token_info(sandbox_server, "pat-na1-unknown")
    assert status == 401
    _assert_hubspot_error(body, "INVALID_AUTHENTICATION")


def _admin(server: SandboxServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(server.base_url + "/_sandbox" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    ctx = ssl.create_default_context(cafile=server.info["ca_cert"])
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_admin_api_adds_tokens_and_narrows_the_main_one(sandbox_server: SandboxServer) -> None:
    status, made = _admin(sandbox_server, "POST", "/hubspot/tokens", {"kind": "service_key",
                                                                      "scopes": ["crm.objects.owners.read"]})
    assert status == 201 and made["kind"] == "service_key" and made["scopes"] == ["crm.objects.owners.read"]
    assert _client(sandbox_server, made["token"]).crm.owners.owners_api.get_page(limit=1).results
    status, err = _admin(sandbox_server, "POST", "/hubspot/tokens", {"scopes": ["crm.objects.everything"]})
    assert status == 400 and "unknown scope" in err["error"]
    main = sandbox_server.info["hubspot"]["access_token"]
    try:
        status, _ = _admin(sandbox_server, "POST", "/hubspot/tokens", {"token": main, "scopes": ["oauth"]})
        assert status == 201
        with pytest.raises(ApiException) as exc:
            _client(sandbox_server, main).crm.contacts.basic_api.get_page(limit=1)
        assert exc.value.status == 403
    finally:
        _admin(sandbox_server, "POST", "/hubspot/tokens", {"token": main})  # every scope again


def test_given_a_held_response_then_a_client_read_timeout_fires(sandbox_server: SandboxServer) -> None:
    info = sandbox_server.info
    hs = HubSpot(access_token=info["hubspot"]["access_token"], host=info["hubspot"]["host"],
                 ssl_ca_cert=info["ca_cert"], retry=urllib3.util.Retry(total=0, read=0, connect=0))
    status, held = _admin(sandbox_server, "POST", "/hold?seconds=1.5&count=1")
    assert status == 200 and held == {"held_seconds": 1.5, "responses": 1}
    with pytest.raises(urllib3.exceptions.HTTPError) as exc:  # ReadTimeoutError, or MaxRetryError wrapping it
        hs.crm.contacts.basic_api.get_page(limit=1, _request_timeout=(1.0, 0.3))
    assert "timed out" in str(exc.value).lower()  # the held answer would have come back whole, not timed out
    assert hs.crm.contacts.basic_api.get_page(limit=1, _request_timeout=(1.0, 5.0)).results  # only one was held
    assert _admin(sandbox_server, "POST", "/hold?seconds=x")[0] == 400
