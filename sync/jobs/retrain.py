"""The retrain job: CRM history → train a challenger → promote it or keep the champion, logged.

Cold start: until the CRM holds ``scoring.min_history`` labelled leads with at least
``scoring.min_history_positives`` conversions, nothing is trained and the cycle keeps
scoring with the cold-start scorer (zero-shot model or prior). After that each run trains
on the full history (time-based split inside ``train_scorer``) and the registry promotes
the new model only if it is not worse than the champion on the same validation data.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.errors import StopCycle
from sync.wiring.deps import Deps, api_calls_since, close_run

log = logging.getLogger(__name__)


@dataclass
class RetrainReport:
    """What one retrain run did."""

    started_at: datetime
    finished_at: datetime | None = None
    history: int = 0
    positives: int = 0
    cold_start: bool = False
    version: str | None = None  # the model trained now
    promoted: bool = False
    champion: str | None = None  # the champion after this run
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def counts(self) -> dict[str, int]:
        return {"history": self.history, "positives": self.positives, "promoted": int(self.promoted),
                "cold_start": int(self.cold_start)}


def run_retrain(deps: Deps) -> RetrainReport:
    """Train from the CRM's labelled history and let the registry decide champion vs challenger."""
    t0 = time.monotonic()
    started = deps.clock()
    report = RetrainReport(started_at=started)
    api_before = dict(deps.connector.api_usage())
    run_id = None if deps.dry_run else deps.store.start_run("train", started)
    try:
        history = list(deps.connector.iter_history(until=started))
        report.history = len(history)
        report.positives = sum(1 for h in history if h.converted)
        cfg = deps.settings.scoring
        if report.history < cfg.min_history or report.positives < cfg.min_history_positives:
            report.cold_start = True
            report.reason = (f"cold start: {report.history} labelled leads ({report.positives} converted); "
                             f"training needs {cfg.min_history} ({cfg.min_history_positives} converted)")
        else:
            outcome = deps.scorers.train(history, started, dry_run=deps.dry_run)
            report.version = outcome.version
            report.promoted = outcome.promoted
            report.reason = outcome.reason
            report.metrics = dict(outcome.metrics)
        report.champion = deps.scorers.version
    except StopCycle as exc:
        report.error = f"stopped: {exc}"
    except Exception as exc:  # noqa: BLE001 - the champion stays; the next run tries again
        report.error = f"{type(exc).__name__}: {exc}"
        log.exception("retrain failed")
    report.api_calls = api_calls_since(deps, api_before)
    report.finished_at = deps.clock()
    report.seconds = time.monotonic() - t0
    close_run(deps, run_id, report, report.reason)
    if deps.metrics is not None:
        deps.metrics.observe_api(deps.crm, report.api_calls)
        deps.metrics.observe_job("retrain", report.seconds, report.ok, report.finished_at.timestamp())
        if report.champion:
            deps.metrics.set_versions(model_version=report.champion)
    log.info("retrain: %s%s", report.reason or "done", f" (error: {report.error})" if report.error else "")
    return report
