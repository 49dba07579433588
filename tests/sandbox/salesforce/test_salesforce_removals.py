"""Deleted and merged leads and unreadable stamps in the Salesforce dialect, through the real
simple-salesforce client; the records are changed through the sandbox's admin API."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from sf_client import login
from simple_salesforce import Salesforce

from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(seed=5, leads=60, scenario="skilled") as server:
        yield server


@pytest.fixture(scope="module")
def sf(sandbox_server: SandboxServer) -> Salesforce:
    return login(sandbox_server.info, "password")


def admin(server: SandboxServer, path: str) -> tuple[int, Any]:
    tls = ssl.create_default_context(cafile=server.info["ca_cert"])
    conn = http.client.HTTPSConnection("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]), context=tls, timeout=30)
    conn.request("POST", "/_sandbox" + path)
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"null")


def ids(server: SandboxServer, n: int, skip: int) -> list[str]:
    return sorted(server.store.records["Lead"])[skip : skip + n]


def test_given_a_deleted_lead_then_query_omits_it_and_query_all_returns_it_deleted(sandbox_server, sf) -> None:
    (lid,) = ids(sandbox_server, 1, 0)
    before = sandbox_server.store.get("Lead", lid)["SystemModstamp"]  # type: ignore[index]
    assert admin(sandbox_server, f"/leads/{lid}/delete")[0] == 200

    soql = f"SELECT Id, IsDeleted, MasterRecordId, SystemModstamp FROM Lead WHERE Id = '{lid}'"
    assert sf.query(soql)["records"] == []
    (row,) = sf.query(soql, include_deleted=True)["records"]
    assert row["IsDeleted"] is True and row["MasterRecordId"] is None
    assert row["SystemModstamp"] > before.strftime("%Y-%m-%dT%H:%M:%S")  # the deletion moved the stamp
    saved = sf.restful("composite/sobjects", method="PATCH",
                       json={"allOrNone": False, "records": [{"attributes": {"type": "Lead"}, "Id": lid, "Title": "x"}]})
    assert saved[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert admin(sandbox_server, f"/leads/{lid}/delete")[0] == 400  # deleted already: said so


def test_given_a_merge_then_the_losers_are_deleted_with_their_master_and_the_survivor_changes(sandbox_server, sf) -> None:
    master, a, b = ids(sandbox_server, 3, 5)
    before = sandbox_server.store.get("Lead", master)["SystemModstamp"]  # type: ignore[index]
    status, body = admin(sandbox_server, f"/leads/{master}/merge?ids={a},{b}")
    assert status == 200 and body["IsDeleted"] is False

    rows = sf.query_all(f"SELECT Id, IsDeleted, MasterRecordId FROM Lead WHERE Id IN ('{master}', '{a}', '{b}')",
                        include_deleted=True)["records"]
    got = {r["Id"]: (r["IsDeleted"], r["MasterRecordId"]) for r in rows}
    assert got == {master: (False, None), a: (True, master), b: (True, master)}
    assert sandbox_server.store.get("Lead", master)["SystemModstamp"] > before  # type: ignore[index]
    assert admin(sandbox_server, f"/leads/{master}/merge")[0] == 400  # nothing named to merge


def test_given_an_unreadable_stamp_then_the_record_still_sorts_by_it_but_is_served_without_it(sandbox_server, sf) -> None:
    (lid,) = ids(sandbox_server, 1, 10)
    assert admin(sandbox_server, f"/leads/{lid}/unreadable-stamp")[0] == 200
    stamp = sandbox_server.store.get("Lead", lid)["SystemModstamp"]  # type: ignore[index]
    since = stamp.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    rows = sf.query_all(f"SELECT Id, SystemModstamp, LastModifiedDate FROM Lead WHERE SystemModstamp >= {since}")["records"]
    assert [(r["Id"], r["SystemModstamp"], r["LastModifiedDate"]) for r in rows if r["Id"] == lid] == [(lid, None, None)]
    assert admin(sandbox_server, "/leads/00Q999999999999AAA/unreadable-stamp")[0] == 400


def test_given_a_deactivated_user_then_it_is_listed_inactive(sandbox_server, sf) -> None:
    uid = sorted(sandbox_server.world.reps)[0]
    assert admin(sandbox_server, f"/users/{uid}/deactivate")[0] == 200
    rows = sf.query("SELECT Id FROM User WHERE IsActive = false")["records"]
    assert uid in {r["Id"] for r in rows}
