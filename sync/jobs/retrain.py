"""The retrain job: CRM history → train a challenger → promote it or keep the champion, logged.

Cold start: until the CRM holds ``scoring.min_history`` labelled leads with at least
``scoring.min_history_positives`` conversions, nothing is trained and the cycle keeps
scoring with the cold-start scorer (zero-shot model or prior). After that each run trains
on the full history (time-based split inside ``train_scorer``) and the registry promotes
the new model only if it is not worse than the champion on the same validation data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from connectors.errors import StopCycle
from sync.jobs.report import JobReport, job_run
from sync.wiring.deps import Deps

log = logging.getLogger(__name__)


@dataclass
class RetrainReport(JobReport):
    """What one retrain run did (a stop signal or the API budget ending it is an ``error``)."""

    COUNTS: ClassVar[tuple[str, ...]] = ("history", "positives", "promoted", "cold_start")

    history: int = 0
    positives: int = 0
    cold_start: bool = False
    version: str | None = None  # the model trained now
    promoted: bool = False
    champion: str | None = None  # the champion after this run
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def note(self) -> str | None:
        """The run history keeps why a model was (not) trained or promoted."""
        return self.reason


def run_retrain(deps: Deps) -> RetrainReport:
    """Train from the CRM's labelled history and let the registry decide champion vs challenger."""
    report = RetrainReport(started_at=deps.clock())
    with job_run(deps, report, "train", job="retrain"):
        _train(deps, report)
    if deps.metrics is not None and report.champion:
        deps.metrics.set_versions(model_version=report.champion)
    log.info("retrain: %s%s", report.reason or "done", f" (error: {report.error})" if report.error else "")
    return report


def _train(deps: Deps, report: RetrainReport) -> None:
    started = report.started_at
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
