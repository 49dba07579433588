"""One sync cycle: pull changed leads → score → flag → decide owners → write back → record.

``run_cycle(deps)`` is the scheduled job body (tests call it directly). Its invariants hold
wherever the process dies:

* a decision is recorded (with the policy state that made it, in one transaction) before
  it is written, and the CRM's current owner is re-checked before an owner is overwritten
  (``owners``); the policy state is saved with a compare-and-set on the version it was
  loaded from (``RouterBox.commit``): a process that loses a race with another on the same
  store reloads and redecides, so the saved state never holds a choice without its decision;
* a lead has at most one decision (the store's unique key; an existing decision is reused);
* a lead that cannot be processed — a record that cannot even be read (its modification
  stamp missing or not a date-time) included — is parked with its reason (``status`` lists
  it) and retried with backoff from the parked list, fetched again by id when its retry is
  due (one query / batch read per batch of ids): it does not hold the watermark back;
* the watermark advances only over leads fully handled or parked, capped at the cycle's start
  (``watermark``), and is committed only after the writes it covers;
* a lead deleted or merged away in the CRM (Salesforce ``queryAll`` rows with ``IsDeleted``,
  ``MasterRecordId``; HubSpot archived contacts, ``hs_merged_object_ids``) has its open
  assignment closed without an outcome: it frees its rep's capacity and the policy forgets it.
  A merge ends the loser's decision; it is not carried to the survivor, which keeps its own
  decision, or is routed in its own right when it needs an owner — the survivor's owner is the
  one the merge kept, and crediting a rep with a record another rep owns would teach the
  policy the wrong rep;
* a lead owned by a deactivated or removed user (``routing.reroute_inactive_owners``) is
  routed again (its earlier decision, if any, superseded: the log keeps it, the policy forgets
  it), logged and counted (``rerouted``);
* a lead its rep left untouched past ``routing.untouched_reroute_hours`` is re-routed once
  (``sync.jobs.untouched``), counted as ``untouched_rerouted``;
* the cycle stops cleanly past ``schedule.cycle_deadline_seconds`` (below the daemon's
  watchdog), like ``StopCycle``: the leads it did not handle are pulled again.

The routing context a decision is made from is built in ``lead_context``; opening and
closing the run (run history, API calls, job metrics) in ``report``.

Modes: ``dry_run`` computes and logs everything and writes nothing (CRM, decisions, policy
state, watermark); ``shadow`` writes scores but records owners only as shadow decisions,
made on a throwaway copy of the policy (the saved policy never holds shadow choices).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy.exc import DBAPIError

from connectors.errors import StopCycle
from connectors.records import STAGES, Lead, Removal, Unreadable
from scoring.types import Score
from sync.jobs.batch import read_chunk, score_update
from sync.jobs.owners import decide_owners, recheck_owners, routing_reason
from sync.jobs.queue import (
    drain_queue,
    exclusion_kind,
    mark_watching,
    observe_speed,
    queue_sla,
    sync_workload,
)
from sync.jobs.report import JobReport, error_text, job_run
from sync.jobs.retrain import train_first_model
from sync.jobs.rewards import apply_lead_stages
from sync.jobs.untouched import reroute_untouched
from sync.jobs.watermark import Watermark
from sync.store.records import Assignment, Decision, LeadState, LeadStatus
from sync.wiring.deps import Deps
from sync.wiring.routing import LostRace, RouterBox

log = logging.getLogger(__name__)

STREAM = "leads"
OWNERS_REFRESH = timedelta(hours=1)  # how often the CRM is asked again which owners are inactive
# Leads of an owner who left that are older than this are stale (training counts them lost): the
# sweep hands them to nobody — a first start must not drown the reps in a former colleague's
# years-old backlog. Any of them that changes later is pulled, and routed again then.
ORPHAN_MAX_AGE = timedelta(days=90)
REMOVED_STREAM = "removed"  # when the CRM was last asked for removals the pull does not return
REMOVALS_EVERY = timedelta(minutes=30)


@dataclass
class CycleReport(JobReport):
    """What one cycle did (counts are leads, not API calls)."""

    COUNTS: ClassVar[tuple[str, ...]] = ("pulled", "skipped", "scored", "flagged", "assigned", "queued", "drained",
                                         "dequeued", "written", "parked", "owner_conflicts", "disqualified",
                                         "converted", "removed", "rerouted", "retried", "untouched_rerouted")

    mode: str = "live"
    pulled: int = 0
    skipped: int = 0
    scored: int = 0
    flagged: int = 0
    assigned: int = 0  # leads given a rep (queued leads that got one included)
    queued: int = 0  # leads left with the fallback owner: no rep could take them now
    drained: int = 0  # queued leads that got a rep this cycle
    dequeued: int = 0  # queued leads that left the queue otherwise (a human took it, it closed)
    written: int = 0
    parked: int = 0
    owner_conflicts: int = 0
    disqualified: int = 0  # routed leads closed unconverted: losses applied to the policy
    converted: int = 0  # routed leads turned into opportunities: early proxy rewards
    removed: int = 0  # leads found deleted or merged away in the CRM (their assignments closed)
    rerouted: int = 0  # leads owned by a deactivated / removed user, routed again
    retried: int = 0  # parked leads fetched again by id (their retry was due)
    untouched_rerouted: int = 0  # leads their rep left untouched past the SLA, given to another (once)
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    assignments: dict[str, int] = field(default_factory=dict)  # rep id -> leads assigned this cycle
    exclusions: dict[str, int] = field(default_factory=dict)  # why reps were left out -> times, this cycle
    workload_calls: int = 0  # API calls spent reading the reps' open leads in the CRM
    worked: set[str] = field(default_factory=set, repr=False)  # lead ids decided in this cycle's pull

    def count_assigned(self, decisions: Iterable[Decision]) -> None:
        for d in decisions:
            if d.rep_id is None:
                self.queued += 1
            else:
                self.assigned += 1
                self.drained += d.supersedes is not None
            self.assignments[d.rep_id or "(fallback)"] = self.assignments.get(d.rep_id or "(fallback)", 0) + 1
            for why in d.considered.values():
                if why:
                    key = exclusion_kind(why)
                    self.exclusions[key] = self.exclusions.get(key, 0) + 1


def run_cycle(deps: Deps) -> CycleReport:
    """Run one sync cycle; never raises for CRM or scoring faults (they end up in the report)."""
    train_first_model(deps)  # a new org: train from its history before the first write
    started = deps.clock()
    mode = "dry-run" if deps.dry_run else "shadow" if deps.shadow else "live"
    report = CycleReport(started_at=started, mode=mode)
    with deps.work_lock, job_run(deps, report, "sync"):  # never beside the fast new-leads pass
        _run(deps, report)
    if deps.metrics is not None:
        deps.metrics.observe_leads(deps.crm, report.counts())
    log.info("sync %s: %s api=%s watermark=%s%s", report.mode, report.counts(), report.api_calls,
             report.watermark_after.isoformat() if report.watermark_after else None,
             f" stopped: {report.stopped}" if report.stopped else "")
    return report


def _run(deps: Deps, report: CycleReport) -> None:
    started = report.started_at
    deadline = started + timedelta(seconds=deps.settings.schedule.cycle_deadline_seconds)
    mark = Watermark()
    report.watermark_before = deps.store.get_watermark(STREAM)
    router = deps.router.scratch() if deps.dry_run or deps.shadow else deps.router
    page: list[Lead] = []
    mark_watching(deps, started)  # speed to lead counts leads created from here on
    try:
        _refresh_owners(deps, router)
        _sweep_removed(deps, router, report)
        sync_workload(deps, router, report)  # after the sweep: removed leads no longer hold slots
        _retry_by_id(deps, router, report, deadline)
        _reroute_orphans(deps, router, report, deadline)
        since = report.watermark_before
        while not _must_stop(deps, report, deadline):
            # Read a whole chunk before writing anything: a live search (HubSpot) pages by
            # offset over a result set our own write-backs reorder, which would skip leads.
            unreadable: list[Unreadable] = []
            chunk = read_chunk(deps, since, unreadable=unreadable.append)
            report.pulled += len(chunk) + len(unreadable)
            _park_unreadable(deps, unreadable, report, mark, since or started)
            for start in range(0, len(chunk), deps.batch_size):
                page = chunk[start : start + deps.batch_size]
                _page(deps, router, page, report, mark)
                page = []
                if _must_stop(deps, report, deadline):
                    page = chunk[start + deps.batch_size :]
                    break
            if report.stopped or len(chunk) < deps.chunk_size:
                break
            last = chunk[-1].modified_at
            if last >= started or (since is not None and last <= since):
                break  # caught up (or a chunk of identical modstamps: the next cycle continues)
            since = last
        if not report.stopped:
            drain_queue(deps, router, report)
            reroute_untouched(deps, router, report)
    except StopCycle as exc:
        report.stopped = str(exc)
        log.warning("sync cycle stopped: %s", exc)
    except Exception as exc:  # noqa: BLE001 - a cycle must end with a report, the next one retries
        report.error = error_text(exc)
        # a database error's traceback would print its statement with every parameter
        log.error("sync cycle failed: %s", report.error, exc_info=not isinstance(exc, DBAPIError))
    for lead in page:  # pulled but never handled: pull them again next time
        mark.hold(lead.modified_at)
    _advance_watermark(deps, report, mark)


def _must_stop(deps: Deps, report: CycleReport, deadline: datetime) -> bool:
    """A stop signal, or the cycle's deadline passed: end after the batch in hand."""
    if report.stopped:
        return True
    if deps.stop.is_set():
        report.stopped = "stop requested"
    elif deps.clock() >= deadline:
        report.stopped = (f"deadline: the cycle ran past {deps.settings.schedule.cycle_deadline_seconds:g} s "
                          "(schedule.cycle_deadline_seconds); the rest is pulled again next cycle")
        log.warning("sync cycle stopped: %s", report.stopped)
    return report.stopped is not None


# ---------------------------------------------------------------- what the pull alone does not bring
def _refresh_owners(deps: Deps, router: RouterBox) -> None:
    """Ask the CRM again (hourly) which owners are inactive; the policy stops routing to them."""
    rules, now = deps.owner_rules, deps.clock()
    if not deps.settings.routing.reroute_inactive_owners:
        return
    if rules.checked_at is None or now - rules.checked_at >= OWNERS_REFRESH:
        gone = frozenset(deps.connector.inactive_owners()) - rules.reassign_from
        deps.owner_rules = rules = replace(rules, inactive=gone, checked_at=now)
    router.exclude_reps(rules.inactive)  # kept through reloads (a lost race reloads mid-cycle)


def _sweep_removed(deps: Deps, router: RouterBox, report: CycleReport) -> None:
    """Removals the pull cannot return (HubSpot archived contacts): asked at most every
    ``REMOVALS_EVERY`` (the ``removed`` watermark: the last sweep), and only while an assignment
    is open (nothing else needs closing) — a quiet cycle stays within its two calls."""
    now = deps.clock()
    last = deps.store.get_watermark(REMOVED_STREAM)
    if (last is not None and now - last < REMOVALS_EVERY) or not deps.store.rep_load(include_shadow=True):
        return
    removals = list(deps.connector.iter_removed(last))
    if removals:
        _close_removed(deps, router, removals, report, now)
    if not deps.dry_run:
        deps.store.set_watermark(REMOVED_STREAM, now, now)


def _retry_by_id(deps: Deps, router: RouterBox, report: CycleReport, deadline: datetime) -> None:
    """Parked leads whose retry is due, fetched by id (not through the watermark: a parked lead
    no longer holds it back for everything else). One that is not returned no longer exists in
    the CRM: it is closed as removed."""
    now = deps.clock()
    due = [s.lead_id for s in deps.store.due_parked(now) if s.attempts < deps.max_attempts]
    for start in range(0, len(due), deps.batch_size):
        if _must_stop(deps, report, deadline):
            return
        ids = due[start : start + deps.batch_size]
        unreadable: list[Unreadable] = []
        leads = deps.connector.get_leads(ids, unreadable=unreadable.append)
        report.retried += len(ids)
        scratch = Watermark()  # these leads never move the watermark
        _park_unreadable(deps, unreadable, report, scratch, now)
        seen = {lead.id for lead in leads} | {u.id for u in unreadable}
        missing = [Removal(lid, now) for lid in ids if lid not in seen]
        if missing:
            _close_removed(deps, router, missing, report, now)
        if leads:
            _page(deps, router, leads, report, scratch)


def _reroute_orphans(deps: Deps, router: RouterBox, report: CycleReport, deadline: datetime) -> None:
    """The open leads of owners newly found inactive (once per owner and process), ours and the
    ones given to them by hand: their modstamps did not move when the owner left, so the pull
    alone would never bring them."""
    rules = deps.owner_rules
    new = sorted(rules.inactive - rules.swept)
    if not new:
        return
    oldest = deps.clock() - ORPHAN_MAX_AGE
    leads = [lead for lead in deps.connector.iter_owned_leads(new)  # closed ones have nothing left to route
             if lead.stage is None and not lead.deleted and rules.owner_gone(lead.owner_id)
             and (lead.created_at is None or lead.created_at >= oldest)]
    scratch = Watermark()  # fetched by owner: they never move the watermark
    for start in range(0, len(leads), deps.batch_size):
        if _must_stop(deps, report, deadline):
            return  # not marked swept: the next cycle asks again
        _page(deps, router, leads[start : start + deps.batch_size], report, scratch)
    deps.owner_rules = replace(deps.owner_rules, swept=rules.swept | frozenset(new))


def _park_unreadable(deps: Deps, items: Sequence[Unreadable], report: CycleReport, mark: Watermark,
                     position: datetime) -> None:
    """Park records that could not be read, by id, with the reason (never skipped)."""
    now = deps.clock()
    for item in items:
        report.parked += 1
        if item.id is None:  # neither CRM sends one; without an id it cannot be parked: hold the watermark
            log.error("a changed record without an id could not be read (%s); the watermark stays at %s",
                      item.reason, position.isoformat())
            mark.hold(position)
            continue
        log.warning("lead %s parked: %s", item.id, item.reason)
        if not deps.dry_run:
            deps.store.park(item.id, f"unreadable record: {item.reason}", now)


def _close_removed(deps: Deps, router: RouterBox, removals: Sequence[Removal], report: CycleReport,
                   now: datetime) -> None:
    """Leads deleted or merged away: close their open assignments (no reward; capacity freed; the
    policy forgets them) and stop working them (status ``skipped`` with the reason)."""
    by_id = {r.lead_id: r for r in removals}
    states = deps.store.lead_state(by_id)
    fresh = [r for r in removals if (st := states.get(r.lead_id)) is not None and st.status != "skipped"]
    opened = {a.lead_id for a in deps.store.assignments(list(by_id), effective=True)
              if a.outcome is None and a.reward_applied_at is None}
    report.removed += len({r.lead_id for r in fresh} | opened)
    for r in removals:
        if r.lead_id in opened or r.lead_id in {f.lead_id for f in fresh}:
            log.info("lead %s %s in the CRM: its assignment is closed", r.lead_id,
                     f"was merged into {r.merged_into}" if r.merged_into else "was deleted")
    if deps.dry_run or not (fresh or opened):
        return

    def record(_: None) -> bool:  # leads rows before assignments rows: the store's lock order
        deps.store.upsert_lead_states([replace(
            states[r.lead_id], status="skipped", parked_until=None,
            last_error=f"merged into {r.merged_into} in the CRM" if r.merged_into else "deleted in the CRM",
            updated_at=None) for r in fresh], now)
        closed = deps.store.close_assignments(sorted(opened), now, now)
        return _forget(deps, router, closed)

    # the persisted policy forgets live decisions in every mode (a shadow decision is not in it)
    deps.router.commit(lambda: None, record, now)


def _supersede_for_the_gone(deps: Deps, router: RouterBox, decisions: Sequence[Assignment], now: datetime) -> None:
    """Take the decisions of leads whose owner left out of effect (the log keeps them) and out of
    the policy (which learns nothing from them), so the leads are decided again."""
    if deps.dry_run or not decisions:
        return

    def record(_: None) -> bool:
        for a in sorted(decisions, key=lambda a: a.lead_id):  # the store's lock order
            deps.store.supersede(a.id, "owner left: routed again", now)
        return _forget(deps, router, [a.lead_id for a in decisions])

    deps.router.commit(lambda: None, record, now)


def _forget(deps: Deps, router: RouterBox, lead_ids: Iterable[str]) -> bool:
    """The policy forgets these leads; True when the persisted one changed (it must be saved)."""
    ids = list(lead_ids)
    if router is not deps.router:  # shadow: the cycle's throwaway copy may hold them too
        for lid in ids:
            router.forget(lid)
    return any([deps.router.forget(lid) for lid in ids])


def _advance_watermark(deps: Deps, report: CycleReport, mark: Watermark) -> None:
    report.watermark_after = report.watermark_before
    if not deps.dry_run:
        new = mark.value(report.started_at, report.watermark_before)
        if new is not None and new != report.watermark_before:
            deps.store.set_watermark(STREAM, new, deps.clock())
        report.watermark_after = new


# ---------------------------------------------------------------- one page of pulled leads
def handle_leads(deps: Deps, router: RouterBox, leads: Sequence[Lead], report: CycleReport) -> None:
    """One page of leads read outside the pull (the fast new-leads pass): the cycle's own
    handling, without moving the ``leads`` watermark (the full sync still owns it)."""
    _page(deps, router, leads, report, Watermark())


def _page(deps: Deps, router: RouterBox, leads: Sequence[Lead], report: CycleReport, mark: Watermark) -> None:
    """Decide which leads of a page need work, and do it."""
    now = deps.clock()
    leads = list({lead.id: lead for lead in leads}.values())  # the overlap window may repeat a lead
    removals = [Removal(lead.id, lead.modified_at, lead.merged_into) for lead in leads if lead.deleted]
    removals += [Removal(mid, lead.modified_at, lead.id) for lead in leads if not lead.deleted for mid in lead.merged_ids]
    if removals:
        _close_removed(deps, router, removals, report, now)
    for lead in leads:
        if lead.deleted:
            mark.done(lead.modified_at)
    leads = [lead for lead in leads if not lead.deleted]
    states = deps.store.lead_state(lead.id for lead in leads)
    assigned = {a.lead_id: a for a in deps.store.assignments([lead.id for lead in leads], effective=True)}
    losses, proxies = apply_lead_stages(deps, deps.router, leads, assigned, now)
    report.disqualified += losses
    report.converted += proxies
    todo: list[Lead] = []
    for lead in leads:
        state = states.get(lead.id)
        verdict = _triage(deps, lead, state, assigned.get(lead.id), now)
        if verdict in ("skip", "wait"):  # wait: parked, retry not due; the parked list brings it back (by id)
            report.skipped += 1
            mark.done(lead.modified_at)
        else:
            todo.append(lead)
    _settle_closed(deps, leads, states, now)
    gone = [lead for lead in todo if _decided_for_the_gone(deps, lead, assigned.get(lead.id))]
    if gone:
        report.rerouted += len(gone)
        for lead in gone:
            log.info("lead %s: its owner %s was deactivated or removed; routing it again", lead.id, lead.owner_id)
        redo = [assigned[lead.id] for lead in gone if lead.id in assigned]
        _supersede_for_the_gone(deps, router, redo, now)
        if not deps.dry_run:
            for a in redo:
                assigned.pop(a.lead_id)
    if todo:
        _handle(deps, router, todo, states, assigned, report, mark, now)
    deps.heartbeat()


def _settle_closed(deps: Deps, leads: Sequence[Lead], states: Mapping[str, LeadState], now: datetime) -> None:
    """A parked lead that closed in the CRM is not retried any more: nothing will be written to it."""
    ids = [lead.id for lead in leads if lead.stage in STAGES
           and (st := states.get(lead.id)) is not None and st.status == "parked"]
    if ids and not deps.dry_run:
        deps.store.set_status(ids, "skipped", now)


def _triage(deps: Deps, lead: Lead, state: LeadState | None, decision: Assignment | None, now: datetime) -> str:
    """``skip`` (nothing changed, or closed), ``wait`` (parked, retry not due), or ``work``."""
    if lead.stage in STAGES and (state is None or state.status != "scored"):
        return "skip"  # converted or disqualified: read for rewards, never rewritten (unless a write is owed)
    if state is None or state.input_hash != lead.input_hash:
        return "work"
    if state.status == "parked":
        changed = state.modstamp is not None and lead.modified_at > state.modstamp
        due = state.parked_until is None or state.parked_until <= now
        return "work" if (changed or due) else "wait"
    if state.status not in ("written", "skipped"):
        return "work"  # scored or decided but not written yet (e.g. a crash in between)
    if deps.owner_rules.needs_owner(lead.owner_id) and decision is None:
        return "work"  # an owner was removed (or the lead went back to a queue)
    if _decided_for_the_gone(deps, lead, decision):
        return "work"  # decided before, but its rep has left since: decided again
    return "skip"


def _decided_for_the_gone(deps: Deps, lead: Lead, decision: Assignment | None) -> bool:
    """Owned by a user who left, and our decision (if any) named that user: route it again. A
    decision already naming an active rep stands (the CRM may still show the old owner: search lag)."""
    rules = deps.owner_rules
    if lead.stage is not None or not rules.owner_gone(lead.owner_id):
        return False
    return decision is None or rules.owner_gone(deps.router.owner_for(decision.rep_id))


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
    report.worked.update(lead.id for lead in leads)
    if deps.dry_run:
        report.count_assigned(decide_owners(router, deps.owner_rules, leads, scores, assigned, now,
                                            context_fields=deps.settings.routing.context_fields, shadow=deps.shadow,
                                            widen_after=queue_sla(deps, "widen")))
        for lead in leads:
            mark.done(lead.modified_at)
        return
    new, assigned = _record(deps, router, leads, scores, states, assigned, now)
    report.count_assigned(new)
    owners = {**{lid: a.rep_id for lid, a in assigned.items() if a.written_at is None and not a.shadow},
              **{d.lead_id: d.rep_id for d in new if not d.shadow}}
    owners = {lid: deps.router.owner_for(rep) for lid, rep in owners.items()}
    owners, conflicting = recheck_owners(deps.connector, deps.owner_rules, {k: v for k, v in owners.items() if v})
    for lid, owner in conflicting.items():
        report.owner_conflicts += 1
        log.info("lead %s: owner changed to %s in the CRM before our write; leaving it", lid, owner)
    conflicts = set(conflicting)
    reasons = ({d.lead_id: routing_reason(d, deps.router.rep_names) for d in new if not d.shadow and d.lead_id not in conflicts}
               if deps.settings.routing.write_reason else {})
    updates = [score_update(lead, score, now, owner=owners.get(lead.id), routing_reason=reasons.get(lead.id))
               for lead, score in zip(leads, scores, strict=True)]
    result = deps.connector.write(updates)
    ok = set(result.succeeded)
    done_ids = [lid for lid in ok if lid not in conflicts]
    with deps.store.atomic():
        deps.store.mark_written(done_ids, now)
        if conflicts & ok:
            cur = deps.store.lead_state(conflicts & ok)
            deps.store.upsert_lead_states([replace(s, status="written") for s in cur.values()], now)
    observe_speed(deps, [d for d in new if d.rep_id and d.lead_id in owners and d.lead_id in ok], now)
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
    states: Mapping[str, LeadState], assigned: Mapping[str, Assignment], now: datetime,
) -> tuple[list[Decision], dict[str, Assignment]]:
    """Decide owners, then record scores, decisions and the policy state that made them in one
    compare-and-set transaction; a lost race (another process decided a lead, or saved the
    policy first) redecides on the winner's state. Returns the new decisions and the
    decision in effect of each of these leads."""
    ids = [lead.id for lead in leads]
    known = dict(assigned)  # re-read by commit once the policy state it must cover is loaded

    def decide() -> list[Decision]:
        return decide_owners(router, deps.owner_rules, leads, scores, known, now,
                             context_fields=deps.settings.routing.context_fields, shadow=deps.shadow,
                             widen_after=queue_sla(deps, "widen"))

    def record(decisions: list[Decision]) -> bool:
        deps.store.upsert_lead_states([_scored(lead, s, states.get(lead.id), now)
                                       for lead, s in zip(leads, scores, strict=True)], now)
        for d in sorted(decisions, key=lambda d: d.lead_id):  # the store's lock order
            if not deps.store.record_decision(d):
                raise LostRace(f"lead {d.lead_id} was decided by another process first")
        return bool(decisions) and not deps.shadow

    def reread() -> None:
        known.clear()
        known.update((a.lead_id, a) for a in deps.store.assignments(ids, effective=True))

    new = router.commit(decide, record, now, on_redo=reread)
    return new, known


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
        if attempts >= deps.max_attempts:
            log.error("lead %s parked for good after %d attempts (retried again on its next change): %s",
                      lead.id, attempts, reason)
        mark.done(lead.modified_at)  # retried from the parked list, by id: the watermark moves on


def _scored(lead: Lead, s: Score, prev: LeadState | None, now: datetime) -> LeadState:
    base = prev or LeadState(lead_id=lead.id)
    status: LeadStatus = "scored" if base.status != "parked" else "parked"
    return replace(base, status=status, modstamp=lead.modified_at, input_hash=lead.input_hash,
                   score=s.probability, grade=s.grade, opportunity=s.opportunity,
                   model_version=s.model_version, updated_at=None)
