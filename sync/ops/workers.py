"""``leadpilot worker``: the daemon's jobs as procrastinate tasks on the store's PostgreSQL.

Any number of worker processes, on any number of machines, share one PostgreSQL (the state
store's). procrastinate provides what the embedded daemon gets from being alone:

- **Periodic jobs once per period**: each job is a periodic task; procrastinate records each
  period's deferral in ``procrastinate_periodic_defers`` under a unique key, so however many
  workers run, each period's job is deferred once.
- **Every org**: with ``LEADPILOT_ORGS_DIR`` each worker serves every org there (Salesforce and
  HubSpot mixed), each on its own schedule; a job names its org in its arguments (``org``).
- **One cycle per org at a time**: every job of an org carries the lock ``leadpilot-org:<org>``
  (a job waits while another job of the same lock is running) and a queueing lock per job
  and org (a period's job is not queued twice while one waits). The cycle's own invariants
  (one decision per lead, rewards applied once, the watermark only over what was handled)
  then hold exactly as under ``leadpilot run``.
- **A killed worker loses nothing**: workers send a heartbeat every ``heartbeat_seconds``; next
  to its heartbeat, every worker checks every ``stalled_check_seconds`` for jobs of a worker
  silent for ``stalled_after_seconds`` and hands them back to the queue, where another worker
  takes them. The check runs in the worker's event loop, not as a queued job, so it runs while
  the worker is busy on a long job (a backfill chunk); workers take turns under a PostgreSQL
  advisory lock, so a job is handed back once. The bound on recovery is
  ``stalled_after_seconds`` plus ``stalled_check_seconds``, whatever the workers are running.

**Backfills over workers**: ``leadpilot backfill --defer`` plans the backfill
(``sync.jobs.backfill``) and defers one ``leadpilot.backfill_chunk`` task per chunk not done
yet, naming its org, each with a queueing lock of its own (deferring again while it waits adds
nothing) and no org lock, so N workers score N chunks at once. A chunk done meanwhile is
skipped; a chunk whose worker died is retried like any stalled job, and reads its leads again
without writing what it had written.

**Metrics**: each worker process serves its own ``/metrics`` (``leadpilot worker --metrics-port``,
``--metrics-port-offset``; the template unit gives instance N the port ``LEADPILOT_METRICS_PORT``
+ N), with the daemon's families, each job's observations labelled with the job's org. One
port per process rather than prometheus_client's multiprocess mode: the workers are separate
units, often on separate machines, so there is no one process to aggregate for them; each
target's ``up`` then says which worker is gone, no shared directory outlives a killed worker,
and the ``Info`` families (model, policy) keep working, which multiprocess mode does not support.

The queue's tables come with the store's migrations (revision 0005 applies procrastinate's
schema on PostgreSQL), so a fresh database needs nothing by hand. A SQLite store has no
workers: ``leadpilot run`` is the embedded mode.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from sync.jobs.backfill import load_progress, run_chunk
from sync.jobs.cycle import run_cycle
from sync.jobs.new_leads import run_new_leads
from sync.jobs.retrain import run_retrain
from sync.jobs.rewards import run_rewards

if TYPE_CHECKING:
    import procrastinate

    from sync.config.settings import Settings
    from sync.jobs.backfill import Progress
    from sync.ops.metrics import Metrics
    from sync.wiring.deps import Deps

log = logging.getLogger(__name__)

JOBS = {"sync": run_cycle, "new_leads": run_new_leads, "rewards": run_rewards, "retrain": run_retrain}


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker watches its peers: the heartbeat, and when a silent one's jobs are retried."""

    heartbeat_seconds: float = 10.0
    stalled_after_seconds: float = 60.0
    stalled_check_seconds: int = 30
    # CPU threads of a job's model work (torch's intra-op pool, OpenMP, BLAS). One by default:
    # workers scale out as processes, one per core; with torch's default of one thread per core in
    # every worker, two workers on two cores ran four spinning threads and were slower than one.
    threads: int = 1


def queue_conninfo(store_url: str) -> str:
    """The libpq URI procrastinate connects with: the store's URL without SQLAlchemy's driver
    suffix (``options=-csearch_path=...`` and the password carried as they are)."""
    url = make_url(store_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            "LEADPILOT_STORE_URL: `leadpilot worker` needs the store on PostgreSQL (the job queue lives "
            "there); a SQLite store runs as one `leadpilot run`"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def interval_cron(minutes: float, variable: str) -> str:
    """A cron for "every ``minutes``" (procrastinate's periodic tasks take cron; a 6th column is
    seconds). Sub-minute periods divide a minute; longer ones divide an hour or a day."""
    seconds = round(minutes * 60)
    if 1 <= seconds < 60 and 60 % seconds == 0:
        return f"* * * * * */{seconds}"
    if seconds % 60 == 0 and 60 % (seconds // 60) == 0:
        return f"*/{seconds // 60} * * * *"
    if seconds % 3600 == 0 and 24 % (seconds // 3600) == 0:
        return f"0 */{seconds // 3600} * * *"
    raise ValueError(
        f"{variable}={minutes:g}: workers schedule with cron, so the interval must divide a minute "
        "(e.g. 0.5), an hour (1, 5, 15, 30) or a day (60, 120, 360 …)"
    )


def org_key(settings: Settings) -> str:
    """The org a job serves: its name in LEADPILOT_ORGS_DIR, or (one org, from .env) its CRM."""
    return settings.org or str(settings.crm)


def queue_store_url(orgs: Sequence[Settings]) -> str:
    """The PostgreSQL URL of the one queue every org's jobs share: the orgs' store URL, which must
    be the same for all (each org's tables are in a schema of its own there)."""
    urls = {one.resolved_store_url for one in orgs}
    if len(urls) > 1:
        raise ValueError("LEADPILOT_STORE_URL: `leadpilot worker` serves every org from one PostgreSQL, but the org "
                         f"files name {len(urls)} different stores; set LEADPILOT_STORE_URL once, in the environment "
                         "(each org's tables go to a schema of their own)")
    return urls.pop()


class _DepsHolder:
    """One ``Deps`` per org in a worker process, wired on the org's first job (CRM log-in, model load)."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings, self.metrics = settings, metrics  # the worker's metrics, labelled with this org
        self._deps: Deps | None = None
        self._lock = threading.Lock()

    def get(self) -> Deps:
        with self._lock:
            if self._deps is None:
                from sync.wiring.deps import build_deps

                self._deps = build_deps(self.settings, metrics=self.metrics)
            return self._deps


def build_app(orgs: Settings | Sequence[Settings], metrics: Metrics | None = None,
              threads: int | None = None) -> procrastinate.App:
    """The procrastinate app with the daemon's jobs as periodic tasks for every org in ``orgs``
    (each org on its own schedule, its jobs under its own lock), observed in ``metrics`` under
    each org's label when given. ``threads``: the CPU threads each job's model work may use
    (``WorkerOptions.threads``; None: the libraries' defaults)."""
    orgs = list(orgs) if isinstance(orgs, Sequence) else [orgs]
    conninfo = queue_conninfo(queue_store_url(orgs))  # a SQLite store is told before anything else
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    holders = {org_key(one): _DepsHolder(one, _org_metrics(metrics, one)) for one in orgs}
    tasks = {name: _task(app, holders, name, threads) for name in JOBS}
    for org, holder in holders.items():
        for name, cron in _crons(holder.settings).items():
            app.periodic(cron=cron, periodic_id=org, lock=f"leadpilot-org:{org}",
                         queueing_lock=f"leadpilot.{name}:{org}", task_kwargs={"org": org})(tasks[name])
    _backfill_task(app, holders, threads)

    return app


def _org_metrics(metrics: Metrics | None, settings: Settings) -> Metrics | None:
    """The worker's metrics as one org's: labelled as ``leadpilot run`` labels that org."""
    from sync.ops.metrics import DEFAULT_ORG

    return None if metrics is None else metrics.for_org(settings.org or DEFAULT_ORG)


def _crons(settings: Settings) -> dict[str, str]:
    schedule = settings.schedule
    crons = {"sync": interval_cron(schedule.sync_interval_minutes, "LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES"),
             "rewards": interval_cron(schedule.rewards_interval_minutes,
                                      "LEADPILOT_SCHEDULE__REWARDS_INTERVAL_MINUTES"),
             "retrain": schedule.retrain_cron}
    if schedule.new_leads_interval_minutes > 0:
        crons["new_leads"] = interval_cron(schedule.new_leads_interval_minutes,
                                           "LEADPILOT_SCHEDULE__NEW_LEADS_INTERVAL_MINUTES")
    return crons


def cpu_threads(threads: int | None) -> Any:
    """A context limiting the calling thread's native thread pools (OpenMP, BLAS) and torch's
    intra-op pool to ``threads``; ``None``: nothing changes.

    procrastinate runs a job in a thread of its own, and OpenMP's thread count is per calling
    thread, so the limit is set around each job, in the job's thread."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    import torch
    from threadpoolctl import threadpool_limits

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threadpool_limits(limits=threads)


def _task(app: procrastinate.App, holders: dict[str, _DepsHolder], name: str, threads: int | None = None) -> Any:
    """Task ``leadpilot.<name>``: the job body for the org its periodic deferral names (``org``)."""
    body = JOBS[name]

    def job(context: Any, timestamp: int, org: str | None = None) -> None:
        # A job queued before orgs named themselves in their arguments: the one org there was.
        holder = holders[org] if org is not None else next(iter(holders.values()))
        org = org or org_key(holder.settings)
        log.info("job %s %s (org %s, period %d) started in pid %d", context.job.id, name, org, timestamp,
                 os.getpid())
        t0 = time.monotonic()
        try:
            with cpu_threads(threads):
                report = body(holder.get())
        except Exception:
            # A body reports its own faults (and its metrics); one that escapes it (the CRM log-in
            # of the org's first job) still counts as the job's failure, as under `leadpilot run`.
            if holder.metrics is not None:
                holder.metrics.observe_job(name, time.monotonic() - t0, False, time.time())
            raise
        error = getattr(report, "error", None)
        log.info("job %s %s (org %s) finished: %s", context.job.id, name, org,
                 getattr(report, "counts", lambda: report)() if error is None else f"error: {error}")

    job.__name__ = f"leadpilot_{name}"
    return app.task(name=f"leadpilot.{name}", pass_context=True)(job)


BACKFILL_TASK = "leadpilot.backfill_chunk"


def _backfill_task(app: procrastinate.App, holders: dict[str, _DepsHolder], threads: int | None = None) -> None:
    def backfill_chunk(context: Any, org: str, chunk: int, plan: str, batch_leads: int) -> None:
        deps = holders[org].get()
        progress = load_progress(deps.store)
        if progress is None or progress.started_at.isoformat() != plan:
            log.info("job %s: backfill chunk %d of org %s belongs to an older plan (%s): nothing to do",
                     context.job.id, chunk, org, plan)
            return
        log.info("job %s backfill chunk %d (org %s) started in pid %d", context.job.id, chunk, org, os.getpid())
        with cpu_threads(threads):
            report = run_chunk(deps, chunk, batch_leads=batch_leads)
        if report.error or report.stopped:
            # The chunk stays undone; failing the job makes the failure visible in the queue.
            raise RuntimeError(f"backfill chunk {chunk} (org {org}): {report.error or report.stopped}")
        log.info("job %s backfill chunk %d (org %s) %s: %s", context.job.id, chunk, org,
                 "was done already" if report.skipped else "done", report.counts())

    app.task(name=BACKFILL_TASK, pass_context=True)(backfill_chunk)


def defer_backfill(settings: Settings, progress: Progress, batch_leads: int) -> int:
    """Queue one task per chunk of ``progress`` not done yet, for the org of ``settings``; how many
    were queued (a chunk already waiting in the queue is not queued twice)."""
    from procrastinate.exceptions import AlreadyEnqueued

    app = build_app(settings)
    org = org_key(settings)
    plan = progress.started_at.isoformat()
    queued = 0
    with app.open():
        for chunk in progress.todo():
            deferrer = app.configure_task(BACKFILL_TASK, queueing_lock=f"leadpilot.backfill:{org}:{chunk.index}")
            try:
                deferrer.defer(org=org, chunk=chunk.index, plan=plan, batch_leads=batch_leads)
                queued += 1
            except AlreadyEnqueued:
                continue
    return queued


# Workers take turns at the stalled-job check under this advisory lock (an arbitrary constant key).
_STALLED_CHECK_LOCK = 0x1EAD_5A1E


async def retry_stalled_jobs(app: procrastinate.App, conninfo: str, stalled_after_seconds: float) -> int:
    """Hand the jobs of workers silent for ``stalled_after_seconds`` (by the database clock) back to
    the queue; how many. Safe when several workers call it at once: one at a time checks, under an
    advisory lock, and a job a peer has just handed back (or a worker has taken again) is not
    stalled any more when the next one looks."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        got = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (_STALLED_CHECK_LOCK,))).fetchone()
        if not got or not got[0]:
            return 0  # a peer is checking right now
        try:
            stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_seconds))
            for job in stalled:
                log.warning("job %s (%s) was running on a worker silent for %.0f s: handing it to another worker",
                            job.id, job.task_name, stalled_after_seconds)
                if job.queueing_lock:
                    # A later period's job waits under the same queueing lock: it would do what the
                    # retried job does (the cycle resumes from the store), so it makes way.
                    for waiting in await app.job_manager.list_jobs_async(queueing_lock=job.queueing_lock,
                                                                         status="todo"):
                        if waiting.id is not None and waiting.id != job.id:
                            await app.job_manager.cancel_job_by_id_async(waiting.id)
                await app.job_manager.retry_job(job)
            return len(stalled)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_STALLED_CHECK_LOCK,))


async def _check_stalled_forever(app: procrastinate.App, conninfo: str, options: WorkerOptions) -> None:
    while True:
        await asyncio.sleep(options.stalled_check_seconds)
        try:
            await retry_stalled_jobs(app, conninfo, options.stalled_after_seconds)
        except Exception as exc:  # the next check tries again; the worker goes on
            log.warning("stalled-job check failed (%s: %s); trying again in %d s", type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "", options.stalled_check_seconds)


async def serve_worker(app: procrastinate.App, conninfo: str, options: WorkerOptions, name: str) -> None:
    """Run a worker of the open ``app`` until stopped, checking for stalled jobs beside its jobs."""
    checker = asyncio.create_task(_check_stalled_forever(app, conninfo, options), name="stalled_check")
    try:
        await app.run_worker_async(name=name, concurrency=1, update_heartbeat_interval=options.heartbeat_seconds,
                                   stalled_worker_timeout=options.stalled_after_seconds, delete_jobs="never")
    finally:
        checker.cancel()


def run_worker(orgs: Settings | Sequence[Settings], options: WorkerOptions, name: str,
               metrics: Metrics | None = None) -> None:
    """Run one worker for ``orgs`` until SIGTERM/SIGINT (procrastinate finishes the job in hand first),
    checking for stalled jobs every ``options.stalled_check_seconds`` beside its jobs; its jobs
    are observed in ``metrics`` (served by the caller)."""
    orgs = list(orgs) if isinstance(orgs, Sequence) else [orgs]
    app = build_app(orgs, metrics, options.threads)
    conninfo = queue_conninfo(queue_store_url(orgs))

    async def serve() -> None:
        async with app.open_async():
            await serve_worker(app, conninfo, options, name)

    with app.open():
        asyncio.run(serve())
