"""The world reacts to owners set through the HubSpot dialect; a 10k search page-through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
)

from sandbox.context import Faults
from sandbox.hubspot.props import hs_id
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def big_server() -> Iterator[SandboxServer]:
    with SandboxServer(seed=9, leads=10_050, faults=Faults(hs_burst_limit=0)) as server:
        yield server


def _client(server: SandboxServer) -> HubSpot:
    i = server.info
    return HubSpot(access_token=i["hubspot"]["access_token"], host=i["hubspot"]["host"], ssl_ca_cert=i["ca_cert"])


def test_given_owners_set_through_hubspot_when_time_passes_then_outcomes_and_deals_appear(sandbox_server: SandboxServer) -> None:
    hs = _client(sandbox_server)
    api = hs.crm.contacts.search_api
    sandbox_server.advance(1)  # more leads arrive into the queue
    unowned = api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hubspot_owner_id", "operator": "NOT_HAS_PROPERTY"}]}], limit=100))
    assert unowned.results
    rep = hs_id(sorted(sandbox_server.world.reps)[0])
    hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": r.id, "properties": {"hubspot_owner_id": rep}} for r in unowned.results]))
    sandbox_server.advance(200)
    truth = {hs_id(t["lead_id"]): t for t in sandbox_server.world.ground_truth()}
    converted = [r.id for r in unowned.results if truth[r.id]["converted"]]
    assert all(truth[r.id]["assigned_rep"] == sorted(sandbox_server.world.reps)[0] for r in unowned.results)
    assert converted, "with 100 routed leads some convert"
    deals = {sandbox_server.store.get("Lead", f"00Q{int(c):012d}AAA")["ConvertedOpportunityId"] for c in converted}
    resp = hs.crm.associations.v4.batch_api.get_page("deals", "contacts", BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[{"id": hs_id(d)} for d in deals]))
    assert sorted(t.to_object_id for r in resp.results for t in r.to) == sorted(converted)
    stages = hs.crm.deals.batch_api.read({"inputs": [{"id": hs_id(d)} for d in deals],
                                          "properties": ["dealstage", "hs_is_closed_won"], "propertiesWithHistory": []})
    assert {r.properties["dealstage"] for r in stages.results} <= {"closedwon", "closedlost"}
    assert {r.properties["hs_is_closed_won"] == "true" for r in stages.results} == \
        {truth[c]["won"] for c in converted}


@pytest.mark.slow
def test_given_10k_plus_contacts_then_paging_hits_the_cap_and_rewindowing_gets_the_rest(big_server: SandboxServer) -> None:
    api = _client(big_server).crm.contacts.search_api
    seen: dict[str, str] = {}
    window, after = "0", None
    while True:
        req = PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": window}]}],
            sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            properties=["lastmodifieddate"], limit=200, after=after)
        try:
            page = api.do_search(req)
        except ApiException as exc:
            assert exc.status == 400 and after == "10000"
            last = max(seen.values())  # re-window from the newest modstamp seen (inclusive: ties)
            window = str(int(datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp() * 1000))
            after = None
            continue
        seen.update({r.id: r.properties["lastmodifieddate"] for r in page.results})
        if not page.paging:
            break
        after = page.paging.next.after
    assert len(seen) == len(big_server.store.all("Lead")) == 10_050
