"""``leadpilot run``: APScheduler schedules the job bodies; this module only wires signals, systemd and metrics.

Jobs: ``sync`` (every ``schedule.sync_interval_minutes``), ``new_leads`` (the fast pass for
new leads, every ``schedule.new_leads_interval_minutes``; never beside ``sync``), ``rewards`` (every
``schedule.rewards_interval_minutes``), ``retrain`` (``schedule.retrain_cron``, UTC). Each
has ``max_instances=1`` (a slow cycle is never overlapped by the next), ``coalesce=True``
(missed runs collapse into one) and a misfire grace time.

SIGTERM/SIGINT set ``deps.stop``: a running job finishes the batch in hand (the cycle checks
the flag between batches), commits and returns; the daemon then exits 0. If a job does not
return within ``stop_timeout`` seconds the daemon exits 1 anyway — everything it committed
is consistent, and what it had not is redone by the next start.
Under systemd (``NOTIFY_SOCKET``) it sends READY=1 once the scheduler runs, WATCHDOG=1 while
jobs make progress, and STOPPING=1 on shutdown.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sync.config.settings import CYCLE_DEADLINE_LIMIT
from sync.jobs.cycle import run_cycle
from sync.jobs.new_leads import run_new_leads
from sync.jobs.retrain import run_retrain
from sync.jobs.rewards import run_rewards
from sync.ops.notify import SystemdNotifier
from sync.wiring.deps import Deps

log = logging.getLogger(__name__)

# A job that has not reported progress (a batch) for this long is stuck: stop feeding the
# watchdog so systemd restarts us.
# A sync cycle's own deadline (schedule.cycle_deadline_seconds) is kept below it.
STUCK_AFTER_SECONDS = CYCLE_DEADLINE_LIMIT


class Daemon:
    """The scheduler around one ``Deps``. ``run()`` blocks until a stop signal; returns the exit code."""

    def __init__(
        self,
        deps: Deps,
        notifier: SystemdNotifier | None = None,
        *,
        stop_timeout: float = 60.0,
        run_now: bool = True,
        jobs: dict[str, Callable[[Deps], Any]] | None = None,
    ) -> None:
        self.deps = deps
        self.notifier = notifier or SystemdNotifier()
        self.stop_timeout = stop_timeout
        self.run_now = run_now
        self.jobs = jobs or {"sync": run_cycle, "new_leads": run_new_leads, "rewards": run_rewards,
                             "retrain": run_retrain}
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}  # job -> monotonic time of its last progress
        self._previous_heartbeat = deps.heartbeat
        deps.heartbeat = self._heartbeat

    # ------------------------------------------------------------ jobs
    def _heartbeat(self) -> None:
        with self._lock:
            now = time.monotonic()
            for job in self._running:
                self._running[job] = now
        self._previous_heartbeat()

    def _wrap(self, name: str, body: Callable[[Deps], Any]) -> Callable[[], None]:
        def job() -> None:
            if self.deps.stop.is_set():
                return
            with self._lock:
                self._running[name] = time.monotonic()
            t0 = time.monotonic()
            try:
                result = body(self.deps)
                log.debug("job %s finished: %s", name, getattr(result, "counts", lambda: result)())
            except Exception:  # noqa: BLE001 - a failing job must not kill the scheduler
                log.exception("job %s failed", name)
                if self.deps.metrics is not None:
                    self.deps.metrics.observe_job(name, time.monotonic() - t0, False, time.time())
            finally:
                with self._lock:
                    self._running.pop(name, None)

        return job

    def scheduler(self) -> BackgroundScheduler:
        """The configured (not started) scheduler."""
        sched = self.deps.settings.schedule
        sch = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": sched.misfire_grace_seconds},
        )
        first = datetime.now(UTC) if self.run_now else None
        if "sync" in self.jobs:
            sch.add_job(self._wrap("sync", self.jobs["sync"]), IntervalTrigger(minutes=sched.sync_interval_minutes),
                        id="sync", name="sync", next_run_time=first)
        if "new_leads" in self.jobs and sched.new_leads_interval_minutes > 0:
            sch.add_job(self._wrap("new_leads", self.jobs["new_leads"]),
                        IntervalTrigger(minutes=sched.new_leads_interval_minutes), id="new_leads", name="new_leads")
        if "rewards" in self.jobs:
            sch.add_job(self._wrap("rewards", self.jobs["rewards"]),
                        IntervalTrigger(minutes=sched.rewards_interval_minutes), id="rewards", name="rewards",
                        next_run_time=first)
        if "retrain" in self.jobs:
            sch.add_job(self._wrap("retrain", self.jobs["retrain"]),
                        CronTrigger.from_crontab(sched.retrain_cron, timezone=UTC), id="retrain", name="retrain")
        return sch

    # ------------------------------------------------------------ lifecycle
    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if not self.deps.stop.is_set():
            log.info("stop requested%s: finishing the batch in hand", f" (signal {signum})" if signum else "")
        self.deps.stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def healthy(self) -> bool:
        """False when a job has made no progress for ``STUCK_AFTER_SECONDS``."""
        now = time.monotonic()
        with self._lock:
            return all(now - t < STUCK_AFTER_SECONDS for t in self._running.values())

    def run(self) -> int:
        sch = self.scheduler()
        sch.start()
        self.notifier.ready(status="scheduler running")
        log.info("leadpilot daemon started (crm=%s, mode=%s)", self.deps.crm,
                 "dry-run" if self.deps.dry_run else "shadow" if self.deps.shadow else "live")
        interval = self.notifier.watchdog_interval() or 5.0
        while not self.deps.stop.wait(min(interval, 5.0)):
            if self.healthy():
                self.notifier.watchdog()
            else:
                log.error("a job made no progress for %d s; not feeding the watchdog", STUCK_AFTER_SECONDS)
        self.notifier.stopping()
        return self._shutdown(sch)

    def _shutdown(self, sch: BackgroundScheduler) -> int:
        done = threading.Event()

        def stop_scheduler() -> None:
            sch.shutdown(wait=True)  # waits for the job in hand, which returns after its batch
            done.set()

        threading.Thread(target=stop_scheduler, name="scheduler-shutdown", daemon=True).start()
        if not done.wait(self.stop_timeout):
            log.error("jobs did not finish within %.0f s of the stop signal; exiting anyway", self.stop_timeout)
            return 1
        try:
            self.deps.store.close()
        except Exception:  # noqa: BLE001 - closing is best effort on the way out
            log.debug("closing the store failed", exc_info=True)
        log.info("leadpilot daemon stopped cleanly")
        return 0
