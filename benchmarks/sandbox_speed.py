"""Sandbox speed: start-up with a preloaded world and a 10k HubSpot search page-through.

Run: ``.venv/bin/python benchmarks/sandbox_speed.py [--leads 50000] [--out FILE]``. Writes JSON
(wall and CPU seconds). The page-through uses the real hubspot-api-client over HTTPS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._out import write_json  # noqa: E402
from sandbox.context import Faults  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402


def page_through(server: SandboxServer, limit: int = 10_000) -> int:
    info = server.info
    api = HubSpot(access_token=info["hubspot"]["access_token"], host=info["hubspot"]["host"],
                  ssl_ca_cert=info["ca_cert"]).crm.contacts.search_api
    seen, after = 0, None
    while seen < limit:
        page = api.do_search(PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}],
            sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            properties=["email", "hubspot_owner_id", "message", "lastmodifieddate"], limit=200, after=after))
        seen += len(page.results)
        if not page.paging:
            break
        after = page.paging.next.after
    return seen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    server = SandboxServer(seed=1, leads=args.leads, faults=Faults(hs_burst_limit=0)).start()
    start = {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2)}
    try:
        t0 = time.perf_counter()
        n = page_through(server)
        paging = {"records": n, "wall_s": round(time.perf_counter() - t0, 2)}
    finally:
        server.stop()
    result = {"leads": args.leads, "start": start, "hubspot_search_page_through": paging}
    print(write_json(result, args.out))


if __name__ == "__main__":
    main()
