"""The rescore job: a new champion → the open leads rescored, rewritten only where that changes.

A lead's score is written when the cycle handles it, so without this job a new model (the
retrain job promoting one, ``leadpilot model promote | rollback``) reaches only the leads
that change afterwards: reps would read "base rate only" or an old model's grade for weeks.

``run_rescore(deps)`` reads every lead once (``iter_changed_leads(None)``, in chunks, like
the cycle), keeps the **open** ones the cycle has settled (stored as written, same inputs:
a lead with new inputs, parked or never handled is the cycle's, which writes the champion's
score anyway), scores them with the champion and writes — through the connector's batched
write, so the usual API floors and batch sizes hold — only those whose score, grade,
reasons or opportunity flag differ from what the CRM shows now. Owners are never touched.
Closed leads (converted or disqualified) are not rewritten.

A write that fails parks the lead with its reason (the cycle retries it); a scoring
failure parks the batch. ``dry_run``: computes and counts, writes nothing (CRM or store).
``shadow``: scores are written as in any shadow cycle (shadow holds back owners only).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

from connectors.errors import StopCycle
from connectors.records import STAGES, Lead
from connectors.values import to_bool, to_number
from scoring.types import Score
from sync.jobs.batch import read_chunk, score_update
from sync.jobs.report import JobReport, job_run
from sync.store.records import LeadState
from sync.wiring.deps import Deps

log = logging.getLogger(__name__)

# Store statuses of leads the cycle has finished with (anything else is still the cycle's work).
SETTLED = ("written",)
SCORE_SLICE = 2000


@dataclass
class RescoreReport(JobReport):
    """What one rescore run did (counts are leads)."""

    COUNTS: ClassVar[tuple[str, ...]] = ("pulled", "closed", "not_settled", "scored", "unchanged", "changed",
                                         "written", "parked")

    model_version: str | None = None
    reason: str = ""  # why it ran (e.g. "new champion v0002")
    pulled: int = 0
    closed: int = 0  # converted, disqualified (or deleted): not rewritten
    not_settled: int = 0  # never handled, parked, or inputs changed since: left to the cycle
    scored: int = 0
    unchanged: int = 0  # the CRM already shows these values: no write
    changed: int = 0  # values differ: written (or would be, in a dry run)
    written: int = 0
    parked: int = 0

    @property
    def note(self) -> str | None:
        return self.stopped or f"{self.reason}: model {self.model_version}"


def run_rescore(deps: Deps, *, reason: str = "new champion") -> RescoreReport:
    """Rescore the open leads with the current champion; write only what changes."""
    report = RescoreReport(started_at=deps.clock(), reason=reason)
    with job_run(deps, report, "rescore"):
        _run(deps, report)
    log.info("rescore (%s) %s: %s api=%s%s", reason, report.model_version, report.counts(), report.api_calls,
             f" stopped: {report.stopped}" if report.stopped else f" error: {report.error}" if report.error else "")
    return report


def _run(deps: Deps, report: RescoreReport) -> None:
    try:
        scorer = deps.scorers.current()
        report.model_version = deps.scorers.version
        since: datetime | None = None
        while True:
            # After the first chunk, continue without the lookback overlap.
            chunk = read_chunk(deps, since, overlap=since is None)
            report.pulled += len(chunk)
            for start in range(0, len(chunk), deps.batch_size):
                rescore_batch(deps, scorer, chunk[start : start + deps.batch_size], report)
                deps.heartbeat()
                if deps.stop.is_set():
                    report.stopped = "stop requested"
                    return
            if len(chunk) < deps.chunk_size:
                return
            last = chunk[-1].modified_at
            if last >= report.started_at or (since is not None and last <= since):
                return  # caught up with our own writes, or a whole chunk of one modstamp
            since = last
    except StopCycle as exc:
        report.stopped = str(exc)
        log.warning("rescore stopped: %s", exc)
    except Exception as exc:  # noqa: BLE001 - the leads keep their scores; the cycle rescores as they change
        report.error = f"{type(exc).__name__}: {exc}"
        log.exception("rescore failed")


def rescore_batch(deps: Deps, scorer: Any, leads: Sequence[Lead], report: RescoreReport, *,
                  unhandled: bool = False) -> None:
    """Score the open, settled ``leads`` and write those whose values change (see the module).

    ``unhandled``: leads the cycle never handled (no state in the store) are scored and written
    too (a backfill's leads); their owners stay as they are and no state is recorded for them.
    """
    now = deps.clock()
    leads = list({lead.id: lead for lead in leads}.values())
    states = deps.store.lead_state(lead.id for lead in leads)
    todo: list[Lead] = []
    for lead in leads:
        state = states.get(lead.id)
        if lead.stage in STAGES or lead.deleted:
            report.closed += 1
        elif state is None and unhandled:
            todo.append(lead)
        elif state is None or state.status not in SETTLED or state.input_hash != lead.input_hash:
            report.not_settled += 1
        else:
            todo.append(lead)
    if not todo:
        return
    try:
        # Scored a slice at a time: a backfill's batch is large (to reach Bulk ingest), scoring's
        # working memory need not be.
        scores = [s for i in range(0, len(todo), SCORE_SLICE)
                  for s in scorer.score([lead.features() for lead in todo[i : i + SCORE_SLICE]])]
    except Exception as exc:  # noqa: BLE001 - parked, as the cycle would: retried there
        log.exception("rescoring failed for %d leads", len(todo))
        _park(deps, todo, f"rescoring failed: {type(exc).__name__}: {exc}", report, now)
        return
    report.scored += len(todo)
    changed = [(lead, s) for lead, s in zip(todo, scores, strict=True) if _differs(lead.written, s)]
    report.unchanged += len(todo) - len(changed)
    report.changed += len(changed)
    if deps.dry_run or not changed:
        return
    updates = [score_update(lead, s, now) for lead, s in changed]
    result = deps.connector.write(updates)
    ok = set(result.succeeded)
    deps.store.upsert_lead_states([_rescored(states[lead.id], s) for lead, s in changed
                                   if lead.id in ok and lead.id in states], now)
    report.written += len(ok)
    by_id = {lead.id: lead for lead, _ in changed}
    for r in result.failed:
        reason = f"rescore write failed: {r.error_code or 'error'}: {r.message or ''}".strip()
        _park(deps, [by_id[r.lead_id]], reason, report, now)


def _differs(crm: Mapping[str, Any], s: Score) -> bool:
    """True when the CRM's current leadpilot fields differ from what this score would write."""
    score = to_number(crm.get("score"))
    return (score is None or int(round(score)) != s.score
            or (crm.get("grade") or None) != s.grade
            or (crm.get("reasons") or None) != (s.reasons or None)
            or bool(to_bool(crm.get("opportunity"))) != bool(s.opportunity))


def _rescored(prev: LeadState, s: Score) -> LeadState:
    return replace(prev, score=s.probability, grade=s.grade, opportunity=s.opportunity,
                   model_version=s.model_version, updated_at=None)


def _park(deps: Deps, leads: Sequence[Lead], reason: str, report: RescoreReport, now: datetime) -> None:
    """Park with the reason; the cycle retries a parked lead and writes the champion's score."""
    for lead in leads:
        report.parked += 1
        if not deps.dry_run:
            deps.store.park(lead.id, reason, now)
