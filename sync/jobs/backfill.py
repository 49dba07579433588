"""The backfill job: score every existing lead of the org, in chunks, resumable after a kill.

Rescoring (``sync.jobs.rescore``) reaches the open leads the cycle has settled; a backfill
reaches all of them: the first day on an org with a million leads, or after a new model. It

1. **plans** once (``plan_backfill``): one cheap query for how many leads there are and when the
   first and the last were created (``BackfillSource.lead_span``), split into chunks of equal
   ``CreatedDate`` width, about ``chunk_leads`` leads each. The plan is kept in the store's
   ``watermarks`` rows under ``backfill:`` (edges, then the plan row last, so a plan row means a
   whole plan);
2. **runs each chunk** (``run_chunk``): the chunk's leads are read streamed (Salesforce: a Bulk
   API 2.0 query read page by page; HubSpot: the windowed search), ``batch_leads`` at a time,
   and each batch goes through ``rescore.rescore_batch``: closed leads (converted,
   disqualified) are not rewritten, leads the cycle is still working on are left to it, and
   only leads whose score, grade, reasons or flag differ from what the CRM shows are written,
   through the connector's batched write (Bulk API 2.0 ingest above its threshold). A chunk's
   ``done`` row is written only once all its writes went through.

Memory is bounded by one batch, whatever the org's size. A killed run loses nothing: done
chunks are skipped by the next run; a chunk killed halfway is read again, and what it had
written already shows in the CRM, so it is not written twice. Chunks are independent, so
workers can run them side by side (``sync.ops.workers``: ``leadpilot backfill --defer``).
Leads created after the plan are the sync's (the cycle scores new leads as they come).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import BackfillSource
from connectors.errors import StopCycle
from connectors.records import Lead
from sync.jobs.batch import closing_pull
from sync.jobs.report import job_run
from sync.jobs.rescore import RescoreReport, rescore_batch
from sync.wiring.deps import Deps

log = logging.getLogger(__name__)

PREFIX = "backfill:"
PLAN = "backfill:plan"  # value: when the plan was made; updated_at: the last chunk finished
EDGE = "backfill:edge:"  # + chunk number: the chunk's first CreatedDate (the last edge ends the last chunk)
DONE = "backfill:done:"  # + chunk number: when it finished
CHUNK_LEADS = 20_000
BATCH_LEADS = 20_000  # read, scored and written together: above Salesforce's Bulk 2.0 threshold (10,000)


@dataclass(frozen=True)
class Chunk:
    index: int
    start: datetime
    end: datetime  # exclusive


@dataclass(frozen=True)
class Progress:
    """A backfill plan and how far it got (what ``leadpilot status`` shows)."""

    started_at: datetime
    last_progress: datetime
    chunks: tuple[Chunk, ...]
    done: frozenset[int]
    leads_done: int = 0

    @property
    def complete(self) -> bool:
        return len(self.done) >= len(self.chunks)

    def todo(self) -> list[Chunk]:
        return [c for c in self.chunks if c.index not in self.done]

    def as_dict(self) -> dict[str, Any]:
        return {"chunks_done": len(self.done), "chunks_total": len(self.chunks), "leads_done": self.leads_done,
                "started": self.started_at.isoformat(), "last_progress": self.last_progress.isoformat(),
                "complete": self.complete}


@dataclass
class BackfillReport(RescoreReport):
    """What one chunk's run did (counts are leads; ``chunk`` its number)."""

    COUNTS: ClassVar[tuple[str, ...]] = ("chunk", *RescoreReport.COUNTS)

    chunk: int = 0
    skipped: bool = False  # the chunk was done already (another worker, an earlier run)

    @property
    def note(self) -> str | None:
        return self.stopped or f"backfill chunk {self.chunk}: model {self.model_version}"


@dataclass
class BackfillSummary:
    """A whole ``leadpilot backfill`` run: the plan's progress and each chunk run."""

    progress: Progress | None
    reports: list[BackfillReport] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(RescoreReport.COUNTS, 0)
        for r in self.reports:
            for k in out:
                out[k] += int(getattr(r, k))
        return out

    @property
    def error(self) -> str | None:
        return next((r.error for r in self.reports if r.error), None)

    @property
    def stopped(self) -> str | None:
        return next((r.stopped for r in self.reports if r.stopped), None)


def source(deps: Deps) -> BackfillSource:
    conn = deps.connector
    if not isinstance(conn, BackfillSource):
        raise TypeError(f"the {deps.crm} connector cannot list every lead by creation time (no backfill)")
    return conn


def load_progress(store: Any) -> Progress | None:
    """The current plan in ``store`` with its finished chunks, or None before the first backfill."""
    rows = store.watermarks(PREFIX)
    plan = rows.get(PLAN)
    if plan is None:
        return None
    edges = sorted((int(k[len(EDGE):]), v) for k, (v, _) in rows.items() if k.startswith(EDGE))
    chunks = tuple(Chunk(i, start, end) for (i, start), (_, end) in itertools.pairwise(edges))
    done = frozenset(int(k[len(DONE):]) for k in rows if k.startswith(DONE))
    last = max([plan[1], *(at for k, (_, at) in rows.items() if k.startswith(DONE))])
    runs = store.recent_runs(limit=max(100, 4 * len(chunks)), kind="backfill")
    leads = sum(int(r.counts.get("pulled", 0)) for r in runs
                if r.status == "ok" and r.started_at >= plan[0] and int(r.counts.get("chunk", -1)) in done)
    return Progress(plan[0], last, chunks, done, leads)


def plan_backfill(deps: Deps, *, chunk_leads: int = CHUNK_LEADS, restart: bool = False) -> Progress:
    """The plan to run: the unfinished one (unless ``restart``), else a new one from one query."""
    if chunk_leads < 1:
        raise ValueError(f"--chunk-leads must be at least 1, got {chunk_leads}")
    current = load_progress(deps.store)
    if current is not None and not current.complete and not restart:
        return current
    span = source(deps).lead_span()
    now = deps.clock()
    deps.store.delete_watermarks(PREFIX)
    edges: list[datetime] = []
    if span.count and span.first is not None and span.last is not None:
        # Whole seconds: SOQL datetime literals (format_soql) carry no fractions, so an edge with
        # milliseconds would lose the leads of its last fraction of a second.
        first, end = _second(span.first), _second(span.last) + timedelta(seconds=1)
        n = max(1, math.ceil(span.count / chunk_leads))
        edges = sorted({first, end, *(_second(first + (end - first) * k / n) for k in range(1, n))})
    for k, at in enumerate(edges):
        deps.store.set_watermark(f"{EDGE}{k:06d}", at, now)
    deps.store.set_watermark(PLAN, now, now)
    log.info("backfill planned: %d leads in %d chunks of about %d", span.count, max(len(edges) - 1, 0), chunk_leads)
    progress = load_progress(deps.store)
    assert progress is not None
    return progress


def _second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


def run_chunk(deps: Deps, index: int, *, batch_leads: int = BATCH_LEADS) -> BackfillReport:
    """Score chunk ``index`` of the current plan and write what changes; skipped when done."""
    report = BackfillReport(started_at=deps.clock(), chunk=index, reason="backfill")
    progress = load_progress(deps.store)
    chunk = next((c for c in progress.chunks if c.index == index), None) if progress else None
    if progress is None or chunk is None:
        report.error = f"no chunk {index} in the current backfill plan"
        return report
    if index in progress.done:
        report.skipped = True
        return report
    with job_run(deps, report, "backfill"), _one_native_thread():
        _run(deps, chunk, report, batch_leads)
    if report.ok and not report.stopped and not deps.dry_run:
        now = deps.clock()
        deps.store.set_watermark(f"{DONE}{index:06d}", now, now)
    log.info("backfill chunk %d %s: %s api=%s%s", index, report.model_version, report.counts(), report.api_calls,
             f" stopped: {report.stopped}" if report.stopped else f" error: {report.error}" if report.error else "")
    return report


def _one_native_thread() -> Any:
    """OpenMP pools (the model's gradient-boosted trees) at one thread while a chunk is scored.

    A backfill scores in large batches beside other busy processes (the other workers, the
    sync): on 2 shared cores the trees' OpenMP threads spin-wait on each other and scoring 2,000
    leads took 129 s instead of 17 s with one thread. More cores are used by more workers.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def bulk_scorer(scorer: Any) -> Any:
    """``scorer`` with its text encoder reading past the embedding cache (the scorer itself, and
    its encoder, unchanged: a copy sharing the loaded model).

    A backfill reads each old lead once. Caching their vectors only grew the cache: on a
    million-lead backfill the cache file reached 1.5 GB after 400,000 leads, its inserts slowed
    every chunk, and its in-memory layer took the backfill's peak RSS past 1 GB. The leads the
    sync cycle works on keep their cached vectors."""
    encoder = getattr(scorer, "encoder", None)
    if encoder is None or getattr(encoder, "cache", None) is None or not hasattr(encoder, "with_options"):
        return scorer
    bulk = copy.copy(scorer)
    bulk.encoder = encoder.with_options(cache=None)
    return bulk


def _run(deps: Deps, chunk: Chunk, report: BackfillReport, batch_leads: int) -> None:
    try:
        scorer = bulk_scorer(deps.scorers.current())
        report.model_version = deps.scorers.version
        with closing_pull(source(deps).iter_created_leads(chunk.start, chunk.end)) as leads:
            for batch in _batches(leads, batch_leads):
                report.pulled += len(batch)
                rescore_batch(deps, scorer, batch, report, unhandled=True)
                deps.heartbeat()
                if deps.stop.is_set():
                    report.stopped = "stop requested"
                    return
    except StopCycle as exc:
        report.stopped = str(exc)
        log.warning("backfill chunk %d stopped: %s", chunk.index, exc)
    except Exception as exc:  # noqa: BLE001 - the chunk stays undone: the next run reads it again
        report.error = f"{type(exc).__name__}: {exc}"
        log.exception("backfill chunk %d failed", chunk.index)


def _batches(leads: Iterator[Lead], size: int) -> Iterator[Sequence[Lead]]:
    while batch := list(itertools.islice(leads, size)):
        yield batch


def run_backfill(deps: Deps, *, chunk_leads: int = CHUNK_LEADS, batch_leads: int = BATCH_LEADS,
                 restart: bool = False, plan: Progress | None = None,
                 on_chunk: Callable[[Progress, BackfillReport], None] | None = None) -> BackfillSummary:
    """Plan (or resume) and run every chunk not done yet, here; stops at the first chunk that
    fails or is stopped (a signal, the API budget), leaving it for the next run. ``plan``: one
    the caller made already with ``plan_backfill`` (not planned, nor queried, again)."""
    progress = plan or plan_backfill(deps, chunk_leads=chunk_leads, restart=restart)
    summary = BackfillSummary(progress)
    for chunk in progress.todo():
        report = run_chunk(deps, chunk.index, batch_leads=batch_leads)
        summary.reports.append(report)
        summary.progress = load_progress(deps.store)
        if on_chunk is not None and summary.progress is not None:
            on_chunk(summary.progress, report)
        if report.error or report.stopped or deps.stop.is_set():
            break
    return summary
