"""The calls behind capacity from the CRM, queued leads and the fast new-leads pass, through the
real client libraries against the sandbox: open-lead counts per owner (one aggregate SOQL
query on Salesforce, one search per owner on HubSpot), leads by id, leads created since."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from sandbox.hubspot.props import hs_id
from sandbox.server import SandboxServer

CLOSED = ("Closed - Not Converted", "Closed - Converted")


def _cid(crm: str, rid: str) -> str:
    return rid if crm == "salesforce" else hs_id(rid)


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_reps_holding_leads_when_counting_workload_then_open_unconverted_leads_per_owner(make: Any, crm: str) -> None:
    with SandboxServer(seed=3, leads=120) as srv:
        srv.world.arrivals_per_day = 20
        srv.advance(2)  # leads arrive, reps work and close some
        expected: Counter[str] = Counter()
        for rec in srv.store.all("Lead"):
            if rec.get("OwnerId") and not rec.get("IsConverted") and rec.get("Status") not in CLOSED:
                expected[_cid(crm, rec["OwnerId"])] += 1
        reps = [_cid(crm, r) for r in srv.world.reps]
        conn = make(srv, crm)
        before = conn.api_usage()["read"]
        got = conn.open_lead_counts(reps)
        calls = conn.api_usage()["read"] - before
        assert {r: n for r, n in got.items() if n} == {r: n for r, n in expected.items() if r in reps and n}
        assert sum(got.values()) > 0
        assert calls == (len(reps) if crm == "hubspot" else 1)
        assert conn.workload_per_owner is (crm == "hubspot")


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_lead_ids_when_getting_leads_then_their_current_records_once_each(make: Any, crm: str) -> None:
    with SandboxServer(seed=4, leads=30) as srv:
        ids = [r["Id"] for r in srv.store.all("Lead")][:5]
        srv.store.update("Lead", ids[0], {"Title": "Chief Routing Officer"})
        conn = make(srv, crm)
        conn.ensure_fields()
        leads = {lead.id: lead for lead in conn.get_leads([_cid(crm, i) for i in ids] + [_cid(crm, ids[1])])}
        assert set(leads) == {_cid(crm, i) for i in ids}
        assert leads[_cid(crm, ids[0])].title == "Chief Routing Officer"


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_given_new_leads_when_asking_for_leads_created_since_then_only_those_in_one_call(make: Any, crm: str) -> None:
    with SandboxServer(seed=5, leads=40) as srv:
        conn = make(srv, crm)
        conn.ensure_fields()
        since = srv.store.clock.now()
        before = conn.api_usage()["read"]
        assert list(conn.iter_new_leads(since)) == []
        assert conn.api_usage()["read"] - before == 1  # nothing new: one cheap call
        srv.world.arrivals_per_day = 48
        srv.world.advance(timedelta(hours=6))
        created = sorted(_cid(crm, r["Id"]) for r in srv.store.all("Lead") if r["CreatedDate"] >= since)
        got = list(conn.iter_new_leads(since))
        assert created and sorted(lead.id for lead in got) == created
        assert [lead.created_at for lead in got] == sorted(lead.created_at for lead in got)  # type: ignore[type-var]
