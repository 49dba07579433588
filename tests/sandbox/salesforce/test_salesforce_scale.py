"""A 10,000-lead SOQL page-through with the real client (5 pages of 2,000).

Timing is reported by ``benchmarks``-style measurement, not asserted: see the module's
``__main__`` block (``python tests/sandbox/salesforce/test_salesforce_scale.py``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from sf_client import login

from sandbox.server import SandboxServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FIELDS = ("Id, FirstName, LastName, Title, Company, Industry, NumberOfEmployees, AnnualRevenue, Country, "
          "LeadSource, Status, Description, Email, OwnerId, IsConverted, CreatedDate, SystemModstamp")


@pytest.fixture(scope="module")
def big_server() -> Iterator[SandboxServer]:
    with SandboxServer(seed=7, leads=10_000, scenario="flat") as server:
        yield server


def page_through(server: SandboxServer) -> tuple[int, int, float]:
    """(records, distinct ids, seconds) for a watermark-style full pull."""
    sf = login(server.info, "password")
    start = time.perf_counter()
    records = list(sf.query_all_iter(f"SELECT {FIELDS} FROM Lead WHERE SystemModstamp > 2000-01-01T00:00:00Z "
                                     "ORDER BY SystemModstamp, Id", headers={"Sforce-Query-Options": "batchSize=2000"}))
    return len(records), len({r["Id"] for r in records}), time.perf_counter() - start


def test_given_ten_thousand_leads_when_paging_through_then_every_lead_once(big_server: SandboxServer) -> None:
    n, distinct, _ = page_through(big_server)
    assert n == distinct == len(big_server.store.records["Lead"]) == 10_000
    pages = sum(v for k, v in big_server.ctx.counters.items() if k.startswith("salesforce GET /services/data/v59.0/query"))
    assert pages == 5


if __name__ == "__main__":  # measure: python tests/sandbox/salesforce/test_salesforce_scale.py
    sys.path.insert(0, "tests/sandbox")
    t0 = time.perf_counter()
    with SandboxServer(seed=7, leads=10_000, scenario="flat") as srv:
        started = time.perf_counter() - t0
        n, _, secs = page_through(srv)
        print({"leads": n, "server_start_s": round(started, 2), "page_through_s": round(secs, 2)})
