"""The retrain job: CRM history → train a challenger → promote it or keep the champion, logged.

Cold start: until the CRM holds ``scoring.min_history`` labelled leads with at least
``scoring.min_history_positives`` conversions, nothing is trained and the cycle keeps
scoring with the cold-start scorer (zero-shot model or prior). After that each run trains
on the full history (time-based split inside ``train_scorer``) and the registry promotes
the new model only if it is not worse than the champion on the same validation data.

A promoted model rescores the open leads (``sync.jobs.rescore``): reps never read a score the
champion would no longer give.

First run (``train_first_model``, called by the cycle before it pulls anything): an org with
no champion and no successful retrain run yet is trained from its history first, so its
first write-back carries real scores; where the history is too small, the retrain run's
counts become what the cold-start score rests on (``ColdStartBasis``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from connectors.errors import StopCycle
from sync.jobs.report import JobReport, job_run
from sync.jobs.rescore import RescoreReport, run_rescore
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
    rescore: RescoreReport | None = None  # the open leads rescored after a promotion

    @property
    def note(self) -> str | None:
        """The run history keeps why a model was (not) trained or promoted."""
        return self.reason


# A first run whose training failed (API budget, a stop) tries again on the next cycles, this often.
FIRST_RUN_TRIES = 3


def run_retrain(deps: Deps, *, rescore: bool = True) -> RetrainReport:
    """Train from the CRM's labelled history and let the registry decide champion vs challenger.

    A promoted model rescores the open leads (``rescore=False``: the caller's cycle does).
    """
    report = RetrainReport(started_at=deps.clock())
    with job_run(deps, report, "train", job="retrain"):
        _train(deps, report)
    if deps.metrics is not None and report.champion:
        deps.metrics.set_versions(model_version=report.champion)
    log.info("retrain: %s%s", report.reason or "done", f" (error: {report.error})" if report.error else "")
    if rescore and report.promoted and not deps.dry_run:
        report.rescore = run_rescore(deps, reason=f"new champion {report.champion}")
    return report


def train_first_model(deps: Deps) -> RetrainReport | None:
    """On the first run against an org, train from its history before anything is written.

    Runs when the scorer provider is in cold start (no champion) and no retrain run has
    succeeded yet (a failed one is retried up to ``FIRST_RUN_TRIES`` times). Not in a dry
    run: nothing may be registered then, and the dry run's scores show the cold start that a
    live first run would replace. Leads already written (by a deployment that ran before
    this existed, or by the fast new-leads pass during the training) are rescored when the
    model is promoted; on a new org the cycle that follows scores all the others.
    """
    if deps.dry_run or not deps.scorers.cold_start:
        return None
    runs = deps.store.recent_runs(limit=FIRST_RUN_TRIES, kind="train")
    if any(r.status == "ok" for r in runs) or len(runs) >= FIRST_RUN_TRIES:
        return None
    log.info("first run against this %s org: training from its history before writing any score", deps.crm)
    report = run_retrain(deps, rescore=False)
    # Counted after training: the fast new-leads pass may have written cold-start scores meanwhile.
    if report.promoted and deps.store.count_leads().get("written"):
        report.rescore = run_rescore(deps, reason=f"first model {report.champion}")
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
