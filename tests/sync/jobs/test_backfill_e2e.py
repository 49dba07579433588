"""``leadpilot backfill`` end to end: the real connectors over HTTPS against the sandbox (generated
leads, Salesforce's Bulk API 2.0 query and ingest, HubSpot's windowed search), a real store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from connectors.salesforce.mapping import DISQUALIFIED_STATUSES
from sync.jobs.backfill import load_progress, run_backfill
from sync.ops.status import collect_status
from tests.sync.conftest import CRMS, Rig

pytestmark = pytest.mark.integration


def _closed(rec: dict[str, Any]) -> bool:
    return bool(rec.get("IsConverted")) or rec.get("Status") in DISQUALIFIED_STATUSES


def _open_ids(rig: Rig) -> set[str]:
    return {lid for lid, r in rig.leads().items() if not _closed(r) and not r.get("IsDeleted")}


def _scored(rig: Rig) -> set[str]:
    return {lid for lid, r in rig.leads().items() if rig.score_of(r) is not None}


@pytest.mark.parametrize("crm", CRMS)
def test_given_an_org_of_old_leads_when_backfilled_twice_then_every_open_lead_is_written_once_and_the_second_run_writes_nothing(
    rig_factory: Callable[..., Rig], crm: str
) -> None:
    rig = rig_factory(crm, leads=40, generated_leads=900, salesforce={"bulk_threshold": 100})
    everyone, open_ids = set(rig.leads()), _open_ids(rig)
    assert 0 < len(open_ids) < len(everyone)  # some old leads are closed

    first = run_backfill(rig.deps, chunk_leads=300, batch_leads=250)

    assert first.error is None and first.stopped is None
    totals = first.totals()
    assert totals["pulled"] == len(everyone)
    assert totals["written"] == len(open_ids)
    assert totals["closed"] == len(everyone) - len(open_ids)
    assert _scored(rig) == open_ids  # closed leads are not rewritten
    progress = load_progress(rig.deps.store)
    assert progress is not None and progress.complete and len(progress.chunks) == 4
    assert progress.leads_done == len(everyone)
    shown = collect_status(rig.settings, rig.deps.store)["backfill"]
    assert (shown["chunks_done"], shown["chunks_total"], shown["leads_done"]) == (4, 4, len(everyone))
    if crm == "salesforce":  # read through Bulk 2.0 query jobs, written through Bulk 2.0 ingest jobs
        counters = rig.srv.ctx.counters
        assert counters["salesforce POST /services/data/v59.0/jobs/query"] == 4
        assert counters["salesforce POST /services/data/v59.0/jobs/ingest"] >= 4

    second = run_backfill(rig.deps, chunk_leads=300, batch_leads=250)

    assert second.totals()["written"] == 0
    assert second.totals()["unchanged"] == len(open_ids)


def test_given_the_api_budget_runs_out_mid_backfill_when_run_again_then_it_resumes_without_writing_a_lead_twice(
    rig_factory: Callable[..., Rig],
) -> None:
    # Every write through Bulk 2.0 ingest, whose jobs keep each row written: the sandbox's own record of writes.
    rig = rig_factory("salesforce", leads=0, generated_leads=800, salesforce={"bulk_threshold": 1})
    open_ids = _open_ids(rig)
    faults = rig.srv.ctx.faults
    from sandbox.salesforce.api import api_usage

    # Enough calls for the plan, the first chunk and part of the second: a real REQUEST_LIMIT_EXCEEDED.
    faults.sf_daily_budget = api_usage(rig.srv.ctx) + 30
    first = run_backfill(rig.deps, chunk_leads=300, batch_leads=150)

    assert first.stopped is not None and "REQUEST_LIMIT_EXCEEDED" in first.stopped
    progress = load_progress(rig.deps.store)
    assert progress is not None and 1 <= len(progress.done) < len(progress.chunks)
    assert 0 < len(_scored(rig)) < len(open_ids)

    faults.sf_daily_budget = 15_000
    deps = rig.rebuild(salesforce={"bulk_threshold": 1})  # a new process: the plan comes from the store
    second = run_backfill(deps, chunk_leads=300, batch_leads=150)

    assert second.error is None and second.stopped is None
    assert [r.chunk for r in second.reports] == [c.index for c in progress.todo()]  # done chunks skipped
    assert _scored(rig) == open_ids
    writes = Counter(row[0] for job in rig.srv.ctx.state["sf_bulk_jobs"].values() if job.kind == "ingest"
                     for row in job.success)
    assert set(writes) == open_ids and max(writes.values()) == 1  # no lead written twice
