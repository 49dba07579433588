"""Archived (deleted) and merged contacts and unreadable stamps in the HubSpot dialect, through
the real hubspot-api-client; the records are changed through the sandbox store's admin calls."""

from __future__ import annotations

import pytest
from hubspot import HubSpot

from sandbox.hubspot.props import hs_id
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


def ids(server: SandboxServer, n: int, skip: int) -> list[str]:
    return sorted(server.store.records["Lead"])[skip : skip + n]


def _search_ids(hs: HubSpot, wanted: list[str]) -> set[str]:
    body = {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": wanted}]}],
            "properties": ["hs_object_id"], "limit": 100}
    return {o.id for o in hs.crm.contacts.search_api.do_search(public_object_search_request=body).results}


def test_given_a_deleted_contact_then_it_is_archived_not_searchable_and_listed_with_archived(sandbox_server, hs) -> None:
    (lid,) = ids(sandbox_server, 1, 150)
    hid = hs_id(lid)
    sandbox_server.store.delete("Lead", lid)

    assert _search_ids(hs, [hid]) == set()
    read = hs.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id={"inputs": [{"id": hid}],
                                                                                    "properties": ["email"]})
    assert read.results == [] and read.errors[0].category == "OBJECT_NOT_FOUND"
    archived, after = [], None
    while True:
        page = hs.crm.contacts.basic_api.get_page(limit=100, archived=True, after=after)
        archived += page.results
        if not page.paging:
            break
        after = page.paging.next.after
    (obj,) = [o for o in archived if o.id == hid]
    assert obj.archived is True and obj.archived_at is not None
    live = hs.crm.contacts.basic_api.get_page(limit=100)
    assert hid not in {o.id for o in live.results}


def test_given_a_merge_then_the_survivor_lists_the_merged_ids_and_the_losers_are_gone(sandbox_server, hs) -> None:
    master, a, b = ids(sandbox_server, 3, 160)
    sandbox_server.store.merge("Lead", master, [a, b])

    assert _search_ids(hs, [hs_id(master), hs_id(a), hs_id(b)]) == {hs_id(master)}
    obj = hs.crm.contacts.basic_api.get_by_id(hs_id(master), properties=["hs_merged_object_ids"])
    assert obj.properties["hs_merged_object_ids"] == f"{hs_id(a)};{hs_id(b)}"
    archived = hs.crm.contacts.basic_api.get_page(limit=100, archived=True).results
    assert not {hs_id(a), hs_id(b)} & {o.id for o in archived}  # merged away: gone, not archived


def test_given_an_unreadable_stamp_then_the_contact_is_served_with_a_stamp_that_is_not_a_date(sandbox_server, hs) -> None:
    (lid,) = ids(sandbox_server, 1, 170)
    sandbox_server.store.break_stamp("Lead", lid)
    obj = hs.crm.contacts.basic_api.get_by_id(hs_id(lid), properties=["lastmodifieddate"])
    assert obj.properties["lastmodifieddate"] == "not-a-date"


def test_given_a_deactivated_user_then_it_is_an_archived_owner(sandbox_server, hs) -> None:
    uid = sorted(sandbox_server.world.reps)[1]
    sandbox_server.store.update("User", uid, {"IsActive": False})
    archived = hs.crm.owners.owners_api.get_page(archived=True, limit=500).results
    assert hs_id(uid) in {o.id for o in archived}
    assert hs_id(uid) not in {o.id for o in hs.crm.owners.owners_api.get_page(limit=500).results}
