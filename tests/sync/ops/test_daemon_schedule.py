"""The daemon's schedule: the fast new-leads pass every minute by default, beside the full sync's interval."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from sync.config.settings import ScheduleSettings, Settings
from sync.ops.daemon import Daemon


def _jobs(**schedule: Any) -> dict[str, Any]:
    settings = Settings(_env_file=None, crm="sandbox", schedule=ScheduleSettings(**schedule))  # type: ignore[call-arg]
    deps = SimpleNamespace(settings=settings, heartbeat=lambda: None, stop=threading.Event())
    sch = Daemon(deps, run_now=False).scheduler()  # type: ignore[arg-type]
    return {job.id: job.trigger.interval.total_seconds() for job in sch.get_jobs() if hasattr(job.trigger, "interval")}


def test_given_default_settings_when_scheduling_then_new_leads_every_minute_and_the_sync_keeps_its_interval() -> None:
    jobs = _jobs()
    assert jobs["new_leads"] == 60 and jobs["sync"] == 300


def test_given_the_fast_pass_off_when_scheduling_then_only_the_full_sync_routes() -> None:
    jobs = _jobs(new_leads_interval_minutes=0)
    assert "new_leads" not in jobs and jobs["sync"] == 300
