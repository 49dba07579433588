"""HubSpot search through the real hubspot-api-client: filters, sorts, paging, the cap, index lag."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest

from sandbox.context import Faults
from sandbox.hubspot.props import epoch_ms, hs_id
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


def _search(hs: HubSpot, **kw: object) -> object:
    return hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(**kw))


def _all_ids(hs: HubSpot, groups: list[dict[str, object]], limit: int = 50) -> list[str]:
    ids, after = [], None
    while True:
        page = _search(hs, filter_groups=groups, sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                       properties=["lastmodifieddate"], limit=limit, after=after)
        ids += [r.id for r in page.results]
        if not page.paging:
            return ids
        after = page.paging.next.after


def test_given_no_filters_when_paging_then_every_contact_once_in_modstamp_order(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    ids = _all_ids(hs, [])
    leads = sandbox_server.store.all("Lead")
    assert sorted(ids, key=int) == sorted((hs_id(r["Id"]) for r in leads), key=int)
    assert len(ids) == len(set(ids))
    stamps = {hs_id(r["Id"]): r["SystemModstamp"] for r in leads}
    assert [stamps[i] for i in ids] == sorted(stamps[i] for i in ids)


def test_given_a_gte_window_on_lastmodifieddate_then_only_newer_contacts(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    leads = sorted(sandbox_server.store.all("Lead"), key=lambda r: r["SystemModstamp"])
    cut = leads[len(leads) // 2]["SystemModstamp"]
    ids = _all_ids(hs, [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(epoch_ms(cut))}]}])
    assert set(ids) == {hs_id(r["Id"]) for r in leads if r["SystemModstamp"] >= cut}


def test_given_properties_then_values_are_strings_and_iso_datetimes(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    page = _search(hs, properties=["email", "numberofemployees", "createdate", "lifecyclestage", "message"], limit=3)
    assert page.total == len(sandbox_server.store.all("Lead"))
    props = page.results[0].properties
    assert set(props) >= {"email", "numberofemployees", "createdate", "lifecyclestage", "message"}
    assert props["numberofemployees"].isdigit()
    assert props["createdate"].endswith("Z") and "T" in props["createdate"]
    assert page.results[0].updated_at is not None


def test_given_or_groups_and_operators_then_matches_follow_the_rules(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    leads = sandbox_server.store.all("Lead")
    countries = {"china", "germany"}
    groups = [{"filters": [{"propertyName": "country", "operator": "IN", "values": ["China", "Germany"]}]},
              {"filters": [{"propertyName": "numberofemployees", "operator": "BETWEEN", "value": "100", "highValue": "200"},
                           {"propertyName": "jobtitle", "operator": "HAS_PROPERTY"}]}]
    got = set(_all_ids(hs, groups))
    want = {hs_id(r["Id"]) for r in leads
            if r["Country"].lower() in countries or (100 <= r["NumberOfEmployees"] <= 200 and r["Title"])}
    assert got == want and got


def test_given_contains_token_then_words_of_the_message_match(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    got = set(_all_ids(hs, [{"filters": [{"propertyName": "message", "operator": "CONTAINS_TOKEN", "value": "student*"}]}]))
    want = {hs_id(r["Id"]) for r in sandbox_server.store.all("Lead")
            if any(t.startswith("student") for t in r["Description"].lower().split())}
    assert got == want and got


def test_given_a_descending_sort_then_numbers_are_ordered(hs: HubSpot) -> None:
    page = _search(hs, sorts=[{"propertyName": "numberofemployees", "direction": "DESCENDING"}],
                   properties=["numberofemployees"], limit=20)
    sizes = [int(r.properties["numberofemployees"]) for r in page.results]
    assert sizes == sorted(sizes, reverse=True)


def test_given_limit_over_200_then_400(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as exc:
        _search(hs, limit=201)
    assert exc.value.status == 400
    assert '"category": "VALIDATION_ERROR"' in exc.value.body


def test_given_after_at_the_10000_cap_then_400(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as exc:
        _search(hs, limit=100, after="10000")
    assert exc.value.status == 400
    assert "10000" in exc.value.body


def test_given_an_unknown_filter_property_then_400_naming_it(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as exc:
        _search(hs, filter_groups=[{"filters": [{"propertyName": "no_such_prop", "operator": "EQ", "value": "x"}]}])
    assert exc.value.status == 400 and "no_such_prop" in exc.value.body


def test_given_index_lag_when_a_contact_changes_then_search_sees_it_only_later(
        sandbox_server: SandboxServer, hs: HubSpot, faults: Faults) -> None:
    faults.index_lag_seconds = 30
    lead = sandbox_server.store.all("Lead")[0]
    hs.crm.contacts.basic_api.update(hs_id(lead["Id"]), {"properties": {"company": "Lagged Corp"}})
    groups = [{"filters": [{"propertyName": "company", "operator": "EQ", "value": "Lagged Corp"}]}]
    assert _search(hs, filter_groups=groups).total == 0
    sandbox_server.store.clock.advance(timedelta(seconds=31))
    assert [r.id for r in _search(hs, filter_groups=groups).results] == [hs_id(lead["Id"])]


def test_leads_and_deals_objects_are_searchable(sandbox_server: SandboxServer, hs: HubSpot) -> None:
    leads = hs.crm.objects.leads.search_api.do_search(
        {"filterGroups": [], "properties": ["hs_lead_name", "hubspot_owner_id", "hs_pipeline_stage"], "limit": 5})
    assert leads.total == len(sandbox_server.store.all("Lead"))
    assert leads.results[0].properties["hs_pipeline_stage"].endswith("-stage-id")
    won = hs.crm.deals.search_api.do_search({"filterGroups": [{"filters": [
        {"propertyName": "hs_is_closed_won", "operator": "EQ", "value": "true"}]}],
        "properties": ["dealstage", "amount", "closedate", "hs_is_closed_won"], "limit": 100})
    assert won.total == sum(1 for o in sandbox_server.store.all("Opportunity") if o["IsWon"]) > 0
    assert {r.properties["dealstage"] for r in won.results} == {"closedwon"}
    assert all(r.properties["closedate"].endswith("Z") for r in won.results)
