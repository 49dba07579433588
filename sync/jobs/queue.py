"""The cycle's routing upkeep: capacity from the CRM, queued leads drained, speed to lead.

* ``sync_workload``: before any decision, each capped rep's open load becomes what the CRM
  says they hold plus leadpilot's decisions since (``workload``), so ``max_open`` means the
  rep's real desk, not only what leadpilot gave them.
* ``drain_queue``: a lead left with the fallback owner (no rep in hours, all at capacity)
  is decided again on every cycle until a rep can take it. Its current record is read (one
  call per 300 Salesforce / 100 HubSpot leads, none when the queue is empty); a lead a human
  took meanwhile, or that closed, leaves the queue with the reason logged on its decision.
  The new decision supersedes the queued one in one transaction with the policy state; the
  log keeps both. Past ``LEADPILOT_ROUTING__QUEUE_SLA_MINUTES``: ``widen`` lets reps outside
  working hours take it, ``alert`` warns in the log and on the ``leadpilot_queue_over_sla``
  gauge.
* ``observe_speed``: speed to lead (CRM creation to leadpilot's write of a rep as owner) into
  the Prometheus histogram; ``status`` and the report read the same from the store. Only leads
  created since leadpilot started watching the org count (``watching_since``: the start of its
  first sync or new-leads pass, kept as the ``watching`` watermark): the backlog a first run
  routes was created months before anyone could have answered it, and would say p50 ≈ a year.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from connectors.errors import StopCycle
from connectors.records import Lead, LeadUpdate
from sync.jobs.owners import decide_again, recheck_owners, routing_reason
from sync.store.records import Assignment, Decision
from sync.wiring.deps import Deps
from sync.wiring.routing import LostRace, RouterBox

if TYPE_CHECKING:
    from sync.jobs.cycle import CycleReport

log = logging.getLogger(__name__)

WATCHING_STREAM = "watching"  # when leadpilot first ran against this org: speed to lead counts leads created since

_KINDS = {"outside working hours": "outside working hours", "not a working day": "not a working day",
          "out of office": "out of office", "at capacity": "at capacity", "daily cap reached": "daily cap reached",
          "outside territor": "outside territory", "not eligible under": "not eligible under the assignment rules",
          "inactive": "inactive"}  # reason prefix -> kind


def exclusion_kind(why: str) -> str:
    """The kind of an exclusion reason, for counting: ``"at capacity: 10 open of max 10"`` →
    ``"at capacity"``. Reasons of another shape count under their words before any detail."""
    for prefix, kind in _KINDS.items():
        if why.startswith(prefix):
            return kind
    return re.split(r"[:(]", why, maxsplit=1)[0].strip() or why


def queue_sla(deps: Deps, action: str) -> timedelta | None:
    """The queue SLA when it is configured with ``action`` (``widen`` / ``alert``), else None."""
    r = deps.settings.routing
    if r.queue_sla_minutes <= 0 or r.queue_sla_action != action:
        return None
    return timedelta(minutes=r.queue_sla_minutes)


def sync_workload(deps: Deps, router: RouterBox, report: CycleReport) -> None:
    """Set each capped rep's open load from the CRM (see ``sync.jobs.workload``)."""
    capped = [r.id for r in router.router.reps.values() if r.max_open is not None]
    if not capped:
        return
    try:
        report.workload_calls += deps.workload.refresh(deps.connector, capped, deps.clock())
    except StopCycle:
        raise
    except Exception as exc:  # noqa: BLE001 - capacity falls back to the last counts, the cycle goes on
        log.warning("could not read the reps' open leads from the CRM (%s); using the last counts and "
                    "leadpilot's own assignments", exc)
    loads = deps.workload.loads(deps.store)
    if loads:
        router.sync_open(loads)


def drain_queue(deps: Deps, router: RouterBox, report: CycleReport) -> None:
    """Decide queued leads again; give each a rep who can take it now, and write that owner."""
    now = deps.clock()
    waiting = [a for a in deps.store.queued() if a.lead_id not in report.worked]
    if waiting:
        current = {lead.id: lead for lead in deps.connector.get_leads([a.lead_id for a in waiting])}
        todo = []
        for a in waiting:
            lead = current.get(a.lead_id)
            why = ("lead no longer in the CRM" if lead is None or lead.deleted else f"lead {lead.stage}" if lead.stage
                   else None if deps.owner_rules.needs_owner(lead.owner_id) else "owner set in the CRM")
            if why is None and lead is not None:
                todo.append((lead, a))
                continue
            report.dequeued += 1
            if not deps.dry_run:
                deps.store.supersede(a.id, why or "left the queue", now)
        if deps.dry_run:
            report.count_assigned(decide_again(router, todo, now, context_fields=deps.settings.routing.context_fields,
                                               widen_after=queue_sla(deps, "widen")))
        elif todo:
            _record_and_write(deps, router, todo, report, now)
    _observe_queue(deps, now)


def _record_and_write(deps: Deps, router: RouterBox, todo: Sequence[tuple[Lead, Assignment]], report: CycleReport,
                      now: datetime) -> None:
    """Decide the queued leads again and record the new decisions with the policy state, as one
    compare-and-set transaction (``RouterBox.commit``: a lost race redecides on the winner's
    state, leaving out leads another process took out of the queue meanwhile); then write."""
    pending = list(todo)

    def decide() -> list[Decision]:
        return decide_again(router, pending, now, context_fields=deps.settings.routing.context_fields,
                            widen_after=queue_sla(deps, "widen"))

    def record(decisions: list[Decision]) -> bool:
        for d in sorted(decisions, key=lambda d: d.lead_id):  # the store's lock order
            if not deps.store.record_decision(d):
                raise LostRace(f"queued lead {d.lead_id} left the queue elsewhere meanwhile")
        return bool(decisions)

    def reread() -> None:  # still queued under the same decision?
        effective = {a.lead_id: a for a in deps.store.assignments([lead.id for lead, _ in todo], effective=True)}
        pending[:] = [(lead, a) for lead, prev in todo if (a := effective.get(lead.id)) is not None
                      and a.id == prev.id and a.queued]

    new = router.commit(decide, record, now, on_redo=reread)
    report.count_assigned(new)
    write_owners(deps, router, new, report, now, what="queued lead")


def write_owners(deps: Deps, router: RouterBox, new: Sequence[Decision], report: CycleReport, now: datetime, *,
                 what: str, taken_from: Mapping[str, str | None] | None = None, speed: bool = True) -> None:
    """Write the owners of decisions recorded outside the pull (a drained queue, a re-routed lead)
    after the cycle's owner re-check (``recheck_owners``): a lead a human gave someone else since
    our read keeps that owner and our decision leaves effect. ``taken_from``: lead id -> the
    owner we are replacing on purpose (re-routing takes a lead from its rep), still ours to
    overwrite. ``speed``: the write counts for speed to lead (a lead's first rep only)."""
    planned = {d.lead_id: router.owner_for(d.rep_id) for d in new}
    keep, conflicts = recheck_owners(deps.connector, deps.owner_rules, {k: v for k, v in planned.items() if v},
                                     taken_from)
    ids = {d.lead_id: d for d in new}
    for lid, owner in conflicts.items():  # a human took it between our read and our write
        report.owner_conflicts += 1
        log.info("%s %s: owner changed to %s in the CRM before our write; leaving it", what, lid, owner)
        deps.store.supersede(_id_of(deps, lid), "owner set in the CRM before our write", now)
    write_reason = deps.settings.routing.write_reason
    result = deps.connector.write([
        LeadUpdate(lid, owner_id=owner,
                   routing_reason=routing_reason(ids[lid], router.rep_names) if write_reason and lid in ids else None)
        for lid, owner in keep.items()])
    ok = set(result.succeeded) | {lid for lid in planned if lid not in keep and lid not in conflicts}
    deps.store.mark_written(list(ok), now)
    report.written += len(result.succeeded)
    if speed:
        observe_speed(deps, [ids[lid] for lid in ok if lid in ids], now)
    for r in result.failed:
        deps.store.park(r.lead_id, f"owner write failed: {r.error_code or 'error'}: {r.message or ''}".strip(), now)
        report.parked += 1


def _id_of(deps: Deps, lead_id: str) -> int:
    return deps.store.assignments([lead_id], effective=True)[0].id


def mark_watching(deps: Deps, started: datetime) -> None:
    """Remember when leadpilot started watching this org (the first run's start), once."""
    if not deps.dry_run and deps.store.get_watermark(WATCHING_STREAM) is None:
        deps.store.set_watermark(WATCHING_STREAM, started, deps.clock())


def watching_since(store: Any) -> datetime | None:
    """When leadpilot started watching this org; None before its first run."""
    return cast("datetime | None", store.get_watermark(WATCHING_STREAM))


def counts_for_speed(created: datetime | None, since: datetime | None) -> bool:
    """Whether a lead created at ``created`` counts for speed to lead: created once leadpilot
    was watching (a backlog lead waited for leadpilot to exist, not for leadpilot)."""
    return created is not None and since is not None and created >= since


def observe_speed(deps: Deps, written: Sequence[Decision], now: datetime) -> None:
    """Speed to lead of leads whose rep was just written as owner, into the histogram (leads
    created since leadpilot started watching only)."""
    if deps.metrics is not None and written:
        since = watching_since(deps.store)
        deps.metrics.observe_speed([(now - d.lead_created_at).total_seconds() for d in written
                                    if d.rep_id and d.lead_created_at is not None
                                    and counts_for_speed(d.lead_created_at, since)])


def _observe_queue(deps: Deps, now: datetime) -> None:
    """Queue gauges, and the SLA alert: a warning naming how many waited too long."""
    queued = deps.store.queued()
    oldest = (now - queued[0].decided_at).total_seconds() if queued else 0.0
    sla_minutes = deps.settings.routing.queue_sla_minutes
    over = [a for a in queued if sla_minutes > 0 and now - a.decided_at >= timedelta(minutes=sla_minutes)]
    if deps.metrics is not None:
        deps.metrics.observe_queue(len(queued), oldest, len(over))
    if over and queue_sla(deps, "alert") is not None:
        log.warning("%d queued lead(s) waited longer than the %g-minute queue SLA (oldest %.0f min, e.g. %s): "
                    "no rep can take them now; check reps' hours, out of office and max_open, or set "
                    "LEADPILOT_ROUTING__QUEUE_SLA_ACTION=widen", len(over), sla_minutes, oldest / 60,
                    ", ".join(a.lead_id for a in over[:5]))
