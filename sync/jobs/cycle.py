"""One sync cycle: pull changed leads → score → flag → decide owners → write back → record.

``run_cycle(deps)`` is the scheduled job body (tests call it directly). Its invariants hold
wherever the process dies:

* a decision is recorded (with the policy state that made it, in one transaction) before
  it is written, and the CRM's current owner is re-checked before an owner is overwritten
  (``owners``);
* a lead has at most one decision (the store's unique key; an existing decision is reused);
* a lead that cannot be processed is parked with its reason and retried with backoff;
  until it succeeds (or runs out of attempts) it holds the watermark back, so it is pulled
  again — nothing is lost;
* the watermark advances only over leads fully handled, capped at the cycle's start
  (``watermark``), and is committed only after the writes it covers.

The routing context a decision is made from is built in ``lead_context``; opening and
closing the run (run history, API calls, job metrics) in ``report``.

Modes: ``dry_run`` computes and logs everything and writes nothing (CRM, decisions, policy
state, watermark); ``shadow`` writes scores but records owners only as shadow decisions.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import ClassVar

from connectors.errors import StopCycle
from connectors.records import Lead, LeadUpdate
from scoring.types import Score
from sync.jobs.owners import decide_owners, recheck_owners
from sync.jobs.report import JobReport, job_run
from sync.jobs.rewards import apply_lead_stages
from sync.jobs.watermark import Watermark
from sync.store.records import Assignment, Decision, LeadState, LeadStatus
from sync.wiring.deps import Deps
from sync.wiring.routing import RouterBox

log = logging.getLogger(__name__)

STREAM = "leads"


@dataclass
class CycleReport(JobReport):
    """What one cycle did (counts are leads, not API calls)."""

    COUNTS: ClassVar[tuple[str, ...]] = ("pulled", "skipped", "scored", "flagged", "assigned", "written", "parked",
                                         "owner_conflicts", "disqualified", "converted")

    mode: str = "live"
    pulled: int = 0
    skipped: int = 0
    scored: int = 0
    flagged: int = 0
    assigned: int = 0
    written: int = 0
    parked: int = 0
    owner_conflicts: int = 0
    disqualified: int = 0  # routed leads closed unconverted: losses applied to the policy
    converted: int = 0  # routed leads turned into opportunities: early proxy rewards
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    assignments: dict[str, int] = field(default_factory=dict)  # rep id -> leads assigned this cycle

    def count_assigned(self, decisions: Iterable[Decision]) -> None:
        for d in decisions:
            self.assigned += 1
            self.assignments[d.rep_id or "(fallback)"] = self.assignments.get(d.rep_id or "(fallback)", 0) + 1


def run_cycle(deps: Deps) -> CycleReport:
    """Run one sync cycle; never raises for CRM or scoring faults (they end up in the report)."""
    started = deps.clock()
    mode = "dry-run" if deps.dry_run else "shadow" if deps.shadow else "live"
    report = CycleReport(started_at=started, mode=mode)
    with job_run(deps, report, "sync"):
        _run(deps, report)
    if deps.metrics is not None:
        deps.metrics.observe_leads(deps.crm, report.counts())
    log.info("sync %s: %s api=%s watermark=%s%s", report.mode, report.counts(), report.api_calls,
             report.watermark_after.isoformat() if report.watermark_after else None,
             f" stopped: {report.stopped}" if report.stopped else "")
    return report


def _run(deps: Deps, report: CycleReport) -> None:
    started = report.started_at
    mark = Watermark()
    report.watermark_before = deps.store.get_watermark(STREAM)
    router = deps.router.scratch() if deps.dry_run else deps.router
    page: list[Lead] = []
    try:
        since = report.watermark_before
        while True:
            # Read a whole chunk before writing anything: a live search (HubSpot) pages by
            # offset over a result set our own write-backs reorder, which would skip leads.
            chunk = _read_chunk(deps, since)
            report.pulled += len(chunk)
            for start in range(0, len(chunk), deps.batch_size):
                page = chunk[start : start + deps.batch_size]
                _page(deps, router, page, report, mark)
                page = []
                if deps.stop.is_set():
                    report.stopped = "stop requested"
                    page = chunk[start + deps.batch_size :]
                    break
            if report.stopped or len(chunk) < deps.chunk_size:
                break
            last = chunk[-1].modified_at
            if last >= started or (since is not None and last <= since):
                break  # caught up (or a chunk of identical modstamps: the next cycle continues)
            since = last
    except StopCycle as exc:
        report.stopped = str(exc)
        log.warning("sync cycle stopped: %s", exc)
    except Exception as exc:  # noqa: BLE001 - a cycle must end with a report, the next one retries
        report.error = f"{type(exc).__name__}: {exc}"
        log.exception("sync cycle failed")
    for lead in page:  # pulled but never handled: pull them again next time
        mark.hold(lead.modified_at)
    _advance_watermark(deps, report, mark)


def _read_chunk(deps: Deps, since: datetime | None) -> list[Lead]:
    leads = deps.connector.iter_changed_leads(since)
    try:
        return list(itertools.islice(leads, deps.chunk_size))
    finally:
        close = getattr(leads, "close", None)
        if close is not None:
            close()


def _advance_watermark(deps: Deps, report: CycleReport, mark: Watermark) -> None:
    report.watermark_after = report.watermark_before
    if not deps.dry_run:
        new = mark.value(report.started_at, report.watermark_before)
        if new is not None and new != report.watermark_before:
            deps.store.set_watermark(STREAM, new, deps.clock())
        report.watermark_after = new


# ---------------------------------------------------------------- one page of pulled leads
def _page(deps: Deps, router: RouterBox, leads: Sequence[Lead], report: CycleReport, mark: Watermark) -> None:
    """Decide which leads of a page need work, and do it."""
    now = deps.clock()
    leads = list({lead.id: lead for lead in leads}.values())  # the overlap window may repeat a lead
    states = deps.store.lead_state(lead.id for lead in leads)
    assigned = {a.lead_id: a for a in deps.store.assignments([lead.id for lead in leads])}
    losses, proxies = apply_lead_stages(deps, router, leads, assigned, now)
    report.disqualified += losses
    report.converted += proxies
    todo: list[Lead] = []
    for lead in leads:
        state = states.get(lead.id)
        verdict = _triage(deps, lead, state, lead.id in assigned, now)
        if verdict == "skip":
            report.skipped += 1
            mark.done(lead.modified_at)
        elif verdict == "wait":
            report.skipped += 1
            assert state is not None
            if state.attempts < deps.max_attempts:
                mark.hold(lead.modified_at)
        else:
            todo.append(lead)
    if todo:
        _handle(deps, router, todo, states, assigned, report, mark, now)
    deps.heartbeat()


def _triage(deps: Deps, lead: Lead, state: LeadState | None, has_decision: bool, now: datetime) -> str:
    """``skip`` (nothing changed), ``wait`` (parked, retry not due), or ``work``."""
    if state is None or state.input_hash != lead.input_hash:
        return "work"
    if state.status == "parked":
        changed = state.modstamp is not None and lead.modified_at > state.modstamp
        due = state.parked_until is None or state.parked_until <= now
        return "work" if (changed or due) else "wait"
    if state.status not in ("written", "skipped"):
        return "work"  # scored or decided but not written yet (e.g. a crash in between)
    if deps.owner_rules.needs_owner(lead.owner_id) and not has_decision:
        return "work"  # an owner was removed (or the lead went back to a queue)
    return "skip"


def _handle(
    deps: Deps, router: RouterBox, leads: list[Lead], states: Mapping[str, LeadState],
    assigned: Mapping[str, Assignment], report: CycleReport, mark: Watermark, now: datetime,
) -> None:
    try:
        scores = deps.scorers.current().score([lead.features() for lead in leads])
    except Exception as exc:  # noqa: BLE001 - a scoring failure parks the batch, it does not kill the daemon
        log.exception("scoring failed for %d leads", len(leads))
        _park(deps, leads, states, f"scoring failed: {type(exc).__name__}: {exc}", report, mark, now)
        return
    report.scored += len(leads)
    report.flagged += sum(1 for s in scores if s.opportunity)
    decisions = decide_owners(router, deps.owner_rules, leads, scores, assigned, now,
                              context_fields=deps.settings.routing.context_fields, shadow=deps.shadow)
    if deps.dry_run:
        report.count_assigned(decisions)
        for lead in leads:
            mark.done(lead.modified_at)
        return
    new = _record(deps, router, leads, scores, states, decisions, now)
    report.count_assigned(new)
    owners = {**{lid: a.rep_id for lid, a in assigned.items() if a.written_at is None and not a.shadow},
              **{d.lead_id: d.rep_id for d in new if not d.shadow}}
    owners = {lid: deps.router.owner_for(rep) for lid, rep in owners.items()}
    owners, conflicting = recheck_owners(deps.connector, deps.owner_rules, {k: v for k, v in owners.items() if v})
    for lid, owner in conflicting.items():
        report.owner_conflicts += 1
        log.info("lead %s: owner changed to %s in the CRM before our write; leaving it", lid, owner)
    conflicts = set(conflicting)
    updates = [_update(lead, score, owners.get(lead.id), now) for lead, score in zip(leads, scores, strict=True)]
    result = deps.connector.write(updates)
    ok = set(result.succeeded)
    done_ids = [lid for lid in ok if lid not in conflicts]
    with deps.store.atomic():
        deps.store.mark_written(done_ids, now)
        if conflicts & ok:
            cur = deps.store.lead_state(conflicts & ok)
            deps.store.upsert_lead_states([replace(s, status="written") for s in cur.values()], now)
    report.written += len(ok)
    by_id = {lead.id: lead for lead in leads}
    for lid in ok:
        mark.done(by_id[lid].modified_at)
    for r in result.failed:
        lead = by_id[r.lead_id]
        reason = f"write failed: {r.error_code or 'error'}: {r.message or ''}".strip()
        _park(deps, [lead], states, reason, report, mark, now)


def _record(
    deps: Deps, router: RouterBox, leads: Sequence[Lead], scores: Sequence[Score],
    states: Mapping[str, LeadState], decisions: Sequence[Decision], now: datetime,
) -> list[Decision]:
    """Scores, decisions and the policy state that made them, in one transaction."""
    new: list[Decision] = []
    try:
        with deps.store.atomic():
            deps.store.upsert_lead_states([_scored(lead, s, states.get(lead.id), now) for lead, s in zip(leads, scores, strict=True)], now)
            for d in decisions:
                if deps.store.record_decision(d):
                    new.append(d)
                else:  # another process decided first: its decision stands
                    log.warning("lead %s already has a decision; keeping it", d.lead_id)
            if decisions and not deps.shadow:
                router.save(now)
    except Exception:
        router.reload()  # the in-memory policy must not keep choices the database rolled back
        raise
    return new


def _park(
    deps: Deps, leads: Iterable[Lead], states: Mapping[str, LeadState], reason: str,
    report: CycleReport, mark: Watermark, now: datetime,
) -> None:
    for lead in leads:
        report.parked += 1
        if deps.dry_run:
            continue
        prev = states.get(lead.id)
        if prev is None or prev.modstamp != lead.modified_at or prev.input_hash != lead.input_hash:
            base = prev or LeadState(lead_id=lead.id)
            deps.store.upsert_lead_states([replace(base, modstamp=lead.modified_at, input_hash=lead.input_hash,
                                                   status=base.status, updated_at=None)], now)
        deps.store.park(lead.id, reason, now)
        attempts = (prev.attempts if prev else 0) + 1
        if attempts < deps.max_attempts:
            mark.hold(lead.modified_at)
        else:
            log.error("lead %s parked for good after %d attempts: %s", lead.id, attempts, reason)
            mark.done(lead.modified_at)


def _scored(lead: Lead, s: Score, prev: LeadState | None, now: datetime) -> LeadState:
    base = prev or LeadState(lead_id=lead.id)
    status: LeadStatus = "scored" if base.status != "parked" else "parked"
    return replace(base, status=status, modstamp=lead.modified_at, input_hash=lead.input_hash,
                   score=s.probability, grade=s.grade, opportunity=s.opportunity,
                   model_version=s.model_version, updated_at=None)


def _update(lead: Lead, s: Score, owner: str | None, now: datetime) -> LeadUpdate:
    return LeadUpdate(lead_id=lead.id, score=s.score, grade=s.grade, opportunity=s.opportunity,
                      reasons=s.reasons, model_version=s.model_version, scored_at=now,
                      owner_id=owner)
