"""One sync cycle: pull changed leads → score → flag → decide owners → write back → record.

``run_cycle(deps)`` is the scheduled job body (tests call it directly). Its invariants hold
wherever the process dies:

* a decision is recorded (with the policy state that made it, in one transaction) before
  it is written, and the CRM's current owner is re-checked before an owner is overwritten;
* a lead has at most one decision (the store's unique key; an existing decision is reused);
* a lead that cannot be processed is parked with its reason and retried with backoff;
  until it succeeds (or runs out of attempts) it holds the watermark back, so it is pulled
  again — nothing is lost;
* the watermark advances only over leads fully handled, capped at the cycle's start.

Modes: ``dry_run`` computes and logs everything and writes nothing (CRM, decisions, policy
state, watermark); ``shadow`` writes scores but records owners only as shadow decisions.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from connectors.errors import StopCycle
from connectors.records import Lead, LeadUpdate
from scoring.types import Score
from sync.jobs.geo import region
from sync.jobs.rewards import apply_lead_stages
from sync.store.records import Assignment, Decision, LeadState, LeadStatus
from sync.wiring.deps import Deps, api_calls_since, close_run

log = logging.getLogger(__name__)

STREAM = "leads"


@dataclass
class CycleReport:
    """What one cycle did (counts are leads, not API calls)."""

    started_at: datetime
    mode: str = "live"
    finished_at: datetime | None = None
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
    api_calls: dict[str, int] = field(default_factory=dict)
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    stopped: str | None = None  # why the cycle ended early (signal, API budget), None if it ran through
    error: str | None = None
    seconds: float = 0.0
    assignments: dict[str, int] = field(default_factory=dict)  # rep id -> leads assigned this cycle

    @property
    def ok(self) -> bool:
        return self.error is None

    def counts(self) -> dict[str, int]:
        names = ("pulled", "skipped", "scored", "flagged", "assigned", "written", "parked", "owner_conflicts",
                 "disqualified", "converted")
        return {n: int(getattr(self, n)) for n in names}


class _Watermark:
    """Tracks how far the leads seen so far were fully handled (leads arrive in modstamp order)."""

    def __init__(self) -> None:
        self.max_done: datetime | None = None
        self.hold_at: datetime | None = None

    def done(self, stamp: datetime) -> None:
        self.max_done = stamp if self.max_done is None else max(self.max_done, stamp)

    def hold(self, stamp: datetime) -> None:
        self.hold_at = stamp if self.hold_at is None else min(self.hold_at, stamp)

    def value(self, cap: datetime, old: datetime | None) -> datetime | None:
        new = self.hold_at if self.hold_at is not None else self.max_done
        if new is None:
            return old
        new = min(new, cap)
        return new if old is None else max(new, old)


def run_cycle(deps: Deps) -> CycleReport:
    """Run one sync cycle; never raises for CRM or scoring faults (they end up in the report)."""
    t0 = time.monotonic()
    started = deps.clock()
    mode = "dry-run" if deps.dry_run else "shadow" if deps.shadow else "live"
    report = CycleReport(started_at=started, mode=mode)
    api_before = dict(deps.connector.api_usage())
    run_id = None if deps.dry_run else deps.store.start_run("sync", started)
    mark = _Watermark()
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
    _finish(deps, report, mark, started, api_before, run_id, t0)
    return report


def _read_chunk(deps: Deps, since: datetime | None) -> list[Lead]:
    leads = deps.connector.iter_changed_leads(since)
    try:
        return list(itertools.islice(leads, deps.chunk_size))
    finally:
        close = getattr(leads, "close", None)
        if close is not None:
            close()


def _finish(
    deps: Deps, report: CycleReport, mark: _Watermark, started: datetime,
    api_before: Mapping[str, int], run_id: int | None, t0: float,
) -> None:
    report.api_calls = api_calls_since(deps, api_before)
    report.watermark_after = report.watermark_before
    if not deps.dry_run:
        new = mark.value(started, report.watermark_before)
        if new is not None and new != report.watermark_before:
            deps.store.set_watermark(STREAM, new, deps.clock())
        report.watermark_after = new
    report.finished_at = deps.clock()
    report.seconds = time.monotonic() - t0
    close_run(deps, run_id, report, report.stopped)
    if deps.metrics is not None:
        m = deps.metrics
        m.observe_leads(deps.crm, report.counts())
        m.observe_api(deps.crm, report.api_calls)
        m.observe_job("sync", report.seconds, report.ok, report.finished_at.timestamp())
    log.info("sync %s: %s api=%s watermark=%s%s", report.mode, report.counts(), report.api_calls,
             report.watermark_after.isoformat() if report.watermark_after else None,
             f" stopped: {report.stopped}" if report.stopped else "")


# ---------------------------------------------------------------- one page of pulled leads
def _page(deps: Deps, router: Any, leads: Sequence[Lead], report: CycleReport, mark: _Watermark) -> None:
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
    deps: Deps, router: Any, leads: list[Lead], states: Mapping[str, LeadState],
    assigned: Mapping[str, Assignment], report: CycleReport, mark: _Watermark, now: datetime,
) -> None:
    try:
        scores = deps.scorers.current().score([lead.features() for lead in leads])
    except Exception as exc:  # noqa: BLE001 - a scoring failure parks the batch, it does not kill the daemon
        log.exception("scoring failed for %d leads", len(leads))
        _park(deps, leads, states, f"scoring failed: {type(exc).__name__}: {exc}", report, mark, now)
        return
    report.scored += len(leads)
    report.flagged += sum(1 for s in scores if s.opportunity)
    decisions = _decide(deps, router, leads, scores, assigned, now)
    if deps.dry_run:
        report.assigned += len(decisions)
        for d in decisions:
            report.assignments[d.rep_id or "(fallback)"] = report.assignments.get(d.rep_id or "(fallback)", 0) + 1
        for lead in leads:
            mark.done(lead.modified_at)
        return
    new = _record(deps, router, leads, scores, states, decisions, now)
    report.assigned += len(new)
    for d in new:
        report.assignments[d.rep_id or "(fallback)"] = report.assignments.get(d.rep_id or "(fallback)", 0) + 1
    owners = {**{lid: a.rep_id for lid, a in assigned.items() if a.written_at is None and not a.shadow},
              **{d.lead_id: d.rep_id for d in new if not d.shadow}}
    owners = {lid: deps.router.owner_for(rep) for lid, rep in owners.items()}
    owners, conflicts = _recheck_owners(deps, {k: v for k, v in owners.items() if v}, report)
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
    failed = [r for r in result.failed]
    for r in failed:
        lead = by_id[r.lead_id]
        reason = f"write failed: {r.error_code or 'error'}: {r.message or ''}".strip()
        _park(deps, [lead], states, reason, report, mark, now)


def _decide(
    deps: Deps, router: Any, leads: Sequence[Lead], scores: Sequence[Score],
    assigned: Mapping[str, Assignment], now: datetime,
) -> list[Decision]:
    """New routing decisions for leads that need an owner and have none recorded."""
    out: list[Decision] = []
    for lead, score in zip(leads, scores, strict=True):
        if lead.id in assigned or lead.stage is not None or not deps.owner_rules.needs_owner(lead.owner_id):
            continue  # decided before, owned by a human, or already closed (nothing left to route)
        context = routing_context(lead, score, deps.settings.routing.context_fields)
        d = router.assign(lead.id, context, now)
        out.append(Decision(
            lead_id=lead.id, rep_id=d.rep, policy_name=router.policy_name, policy_version=router.version,
            propensity=max(min(float(d.propensity), 1.0), 1e-9), decided_at=now,
            considered={r: d.excluded.get(r) for r in d.considered},
            context=context, shadow=deps.shadow, probabilities=dict(d.probabilities) if d.rep else None,
        ))
    return out


def _record(
    deps: Deps, router: Any, leads: Sequence[Lead], scores: Sequence[Score],
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


def _recheck_owners(
    deps: Deps, owners: dict[str, str | None], report: CycleReport
) -> tuple[dict[str, str | None], set[str]]:
    """Drop owner writes where a human took the lead meanwhile; skip ones already written."""
    if not owners:
        return {}, set()
    current = deps.connector.get_owners(list(owners))
    keep: dict[str, str | None] = {}
    conflicts: set[str] = set()
    for lid, rep in owners.items():
        cur = current.get(lid)
        if cur == rep:
            continue  # written before a crash: nothing to change
        if deps.owner_rules.needs_owner(cur):
            keep[lid] = rep
        else:
            conflicts.add(lid)
            report.owner_conflicts += 1
            log.info("lead %s: owner changed to %s in the CRM before our write; leaving it", lid, cur)
    return keep, conflicts


def _park(
    deps: Deps, leads: Iterable[Lead], states: Mapping[str, LeadState], reason: str,
    report: CycleReport, mark: _Watermark, now: datetime,
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


# Company-size bands as sales teams segment (and as territories are usually cut): a rep's
# edge is per segment, and a raw head count's long tail hides it from a linear model.
SIZE_BANDS = ((100, "SMB"), (1000, "MidMarket"))


def size_band(employees: float | None) -> str | None:
    """``SMB`` (< 100 employees), ``MidMarket`` (< 1,000), ``Enterprise``; None when unknown."""
    if employees is None or math.isnan(employees) or employees < 0:
        return None
    return next((name for limit, name in SIZE_BANDS if employees < limit), "Enterprise")


def routing_context(lead: Lead, s: Score | None, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """What the routing policy sees of a lead: the configured ``fields`` (all structured
    attributes plus ``size_band`` and ``region`` when None) and its score."""
    attrs: dict[str, Any] = {k: v for k, v in lead.features().items() if k != "text"}
    attrs["size_band"] = size_band(lead.employees)
    attrs["region"] = region(lead.country)
    keep = attrs if fields is None else {k: attrs.get(k) for k in fields}
    ctx = {k: v for k, v in keep.items() if v is not None}
    if s is not None:
        ctx["score"] = float(s.probability)
    return ctx
