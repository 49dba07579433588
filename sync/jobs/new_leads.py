"""The fast pass for new leads: an owner within a minute or so, between full syncs.

``run_new_leads(deps)`` runs every ``schedule.new_leads_interval_minutes`` (default 1). It asks
the CRM once for leads created since its last pass (minus ``OVERLAP`` for records committed
late) — one call returning nothing when nothing is new — and hands what it finds to the sync
cycle's page handling (score, decide, record, write), so a new lead gets its owner within the
interval plus a second or two: speed to lead within 90 s at p95 with the default. The full
sync keeps its interval and its watermark; it sees these leads again as our own write-backs
and skips them. The reps' CRM workload is read only when there is a new lead to route.

Cost: 1,440 calls a day at a one-minute interval when nothing is new (1.44 % of a
100,000-call daily budget), plus the calls of the leads it does route. The pass never runs
beside the full sync (``deps.work_lock``): it is skipped while a sync runs, which routes the
new leads itself. Its runs are kept as one row per UTC day and process in the run history
(``new_leads``: passes, leads found, assigned, queued, API calls), not one row a minute.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from sync.jobs.cycle import STREAM as LEADS_STREAM
from sync.jobs.cycle import CycleReport, handle_leads
from sync.jobs.queue import mark_watching, sync_workload
from sync.jobs.report import api_calls_since
from sync.wiring.deps import Deps

log = logging.getLogger(__name__)

STREAM = "new_leads"
KIND = "new_leads"
OVERLAP = timedelta(seconds=60)  # re-read the last minute: a record may commit after its CreatedDate


@dataclass
class FastPassDay:
    """The day's fast passes of this process, kept in one run-history row."""

    day: str
    run_id: int
    passes: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    api_calls: Counter[str] = field(default_factory=Counter)


def run_new_leads(deps: Deps) -> CycleReport:
    """One fast pass (skipped while a full sync runs); returns what it did."""
    report = CycleReport(started_at=deps.clock(), mode="new-leads")
    if not deps.work_lock.acquire(blocking=False):
        report.stopped = "a full sync is running: it routes the new leads"
        return report
    t0 = time.monotonic()
    before = dict(deps.connector.api_usage())
    try:
        _run(deps, report)
    except Exception as exc:  # noqa: BLE001 - the next pass (or the full sync) picks the leads up
        report.error = f"{type(exc).__name__}: {exc}"
        log.exception("new-leads pass failed")
    finally:
        deps.work_lock.release()
    report.api_calls = api_calls_since(deps, before)
    report.finished_at = deps.clock()
    report.seconds = time.monotonic() - t0
    if not deps.dry_run:
        _record_day(deps, report)
    if deps.metrics is not None:
        deps.metrics.observe_api(deps.crm, report.api_calls)
        deps.metrics.observe_leads(deps.crm, report.counts())
        deps.metrics.observe_job(KIND, report.seconds, report.ok, report.finished_at.timestamp())
    if report.pulled:
        log.info("new leads: %s api=%s", report.counts(), report.api_calls)
    return report


def _run(deps: Deps, report: CycleReport) -> None:
    started = report.started_at
    since = (deps.store.get_watermark(STREAM) or deps.store.get_watermark(LEADS_STREAM)
             or started - timedelta(minutes=deps.settings.schedule.sync_interval_minutes))
    mark_watching(deps, started)  # the first pass may come before the first full sync
    leads = list(deps.connector.iter_new_leads(since - OVERLAP))
    report.pulled = len(leads)
    router = deps.router.scratch() if deps.dry_run or deps.shadow else deps.router  # as the cycle does
    if leads:
        sync_workload(deps, router, report)
        for start in range(0, len(leads), deps.batch_size):
            handle_leads(deps, router, leads[start : start + deps.batch_size], report)
    if not deps.dry_run:
        deps.store.set_watermark(STREAM, started, deps.clock())


def _record_day(deps: Deps, report: CycleReport) -> None:
    """Fold this pass into the day's run-history row (opened on the day's first pass)."""
    day = report.started_at.date().isoformat()
    cur: FastPassDay | None = deps.fast_pass
    if cur is None or cur.day != day:
        cur = deps.fast_pass = FastPassDay(day, deps.store.start_run(KIND, report.started_at))
    cur.passes += 1
    cur.counts.update({k: v for k, v in report.counts().items() if v})
    cur.api_calls.update(report.api_calls)
    counts = {"passes": cur.passes, **cur.counts}
    assert report.finished_at is not None
    deps.store.finish_run(cur.run_id, report.finished_at, "failed" if report.error else "ok", counts,
                          dict(cur.api_calls), report.error)


def passes_per_day(interval_minutes: float) -> float:
    """Fast passes a day at this interval (0: the pass is off)."""
    return 0.0 if interval_minutes <= 0 else 24 * 60 / interval_minutes
