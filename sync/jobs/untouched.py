"""SLA re-routing of untouched leads (``LEADPILOT_ROUTING__UNTOUCHED_REROUTE_HOURS``, off at 0).

A lead leadpilot gave a rep who has not touched it — no activity logged since the owner write
(Salesforce ``LastActivityDate``, HubSpot ``hs_last_sales_activity_timestamp``, both pulled
with the lead at no extra call) and its status still a new lead's — that many **working
hours** of its rep after the write is reassigned, once, to another eligible rep (the first one
is excluded with the reason). Working hours are the rep's own from the routing file (hours,
days, time zone: ``RepConfig.working_deadline``): a lead given on Friday at 16:00 to a rep who
works 09:00-17:00 Monday to Friday with a 4-hour SLA is due on Monday at 12:00, not on Saturday.
A rep with no hours configured (or not in the routing file) counts wall-clock hours.

The second decision supersedes the first in the decision log (both kept, one in effect: the
reward belongs to the second), recorded with the policy state in one compare-and-set
transaction (``RouterBox.commit``). The first rep's decision is learned as a loss only when
``LEADPILOT_ROUTING__UNTOUCHED_COUNTS_AS_LOSS`` is on; otherwise the policy forgets it. The
new owner is written after the cycle's owner re-check (``queue.write_owners``): a lead a human
gave someone else between our read and our write keeps that owner.

Candidates are decisions whose SLA ran out in the last 24 hours (turning the setting on does
not sweep the past), read again by id: one call per 300 Salesforce / 100 HubSpot leads, none
when no decision is due. A lead a human gave to someone else, or that closed, is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from connectors.records import Lead
from sync.jobs.lead_context import lead_attributes, routing_context
from sync.jobs.queue import write_owners
from sync.store.records import Assignment, Decision
from sync.wiring.deps import Deps
from sync.wiring.routing import LostRace, RouterBox

if TYPE_CHECKING:
    from sync.jobs.cycle import CycleReport

log = logging.getLogger(__name__)

REASON = "untouched past its SLA: re-routed"  # the superseded decision's reason (≤ 64 characters)
SLACK = timedelta(hours=24)  # how far past the SLA a decision is still re-routed (daemon downtime)
# A new lead's status on either CRM (Salesforce's default, HubSpot's hs_lead_status "NEW", or
# none): any other status means the rep worked it
UNWORKED_STATUSES = frozenset({"", "open - not contacted", "new", "open"})


def untouched(lead: Lead, since: datetime) -> bool:
    """No activity logged since ``since`` and the status still a new lead's."""
    if lead.last_activity_at is not None and lead.last_activity_at >= since:
        return False
    return (lead.status or "").strip().casefold() in UNWORKED_STATUSES


def sla_deadline(router: RouterBox, a: Assignment, sla: timedelta) -> datetime | None:
    """When the decision's rep has had ``sla`` of working time since the owner write (None: never)."""
    start = a.written_at or a.decided_at
    rep = router.router.reps.get(a.rep_id or "")
    return start + sla if rep is None else rep.working_deadline(start, sla)


def reroute_untouched(deps: Deps, router: RouterBox, report: CycleReport) -> None:
    """Re-route, once, the leads whose rep left them untouched past the SLA; write the new owners."""
    hours = deps.settings.routing.untouched_reroute_hours
    if hours <= 0 or deps.dry_run or deps.shadow:
        return
    now = deps.clock()
    sla = timedelta(hours=hours)
    due = [a for a in deps.store.assignments(effective=True)
           if a.rep_id and not a.shadow and a.written_at is not None and a.outcome is None
           and a.reward_applied_at is None and a.written_at <= now - sla  # working time <= wall time
           and a.lead_id not in report.worked
           and (end := sla_deadline(router, a, sla)) is not None and end <= now <= end + SLACK]
    if not due:
        return
    once = {a.lead_id for a in deps.store.assignments([a.lead_id for a in due]) if a.superseded_reason == REASON}
    due = [a for a in due if a.lead_id not in once]
    if not due:
        return
    current = {lead.id: lead for lead in deps.connector.get_leads([a.lead_id for a in due])}
    todo = []
    for a in due:
        lead = current.get(a.lead_id)
        if (lead is None or lead.deleted or lead.stage is not None or lead.owner_id != router.owner_for(a.rep_id)
                or not untouched(lead, a.written_at or a.decided_at)):
            continue  # gone, closed, moved by a human, or touched: it stays with its rep
        todo.append((lead, a))
    if todo:
        _reroute(deps, router, todo, report, now, hours)


def _left_untouched(router: RouterBox, rep_id: str, hours: float) -> str:
    rep = router.router.reps.get(rep_id)
    working = rep is not None and rep.working_hours is not None
    return f"left it untouched for {hours:g} {'working hours' if working else 'h'}"


def _reroute(deps: Deps, router: RouterBox, todo: Sequence[tuple[Lead, Assignment]], report: CycleReport,
             now: datetime, hours: float) -> None:
    as_loss = deps.settings.routing.untouched_counts_as_loss
    pending = list(todo)

    def decide() -> list[Decision]:
        out = []
        for lead, prev in pending:
            assert prev.rep_id is not None
            router.retire(lead.id, now, as_loss=as_loss)
            context = routing_context(lead, None, deps.settings.routing.context_fields)
            if "score" in prev.context:
                context["score"] = prev.context["score"]
            d = router.assign(lead.id, context, now, attrs=lead_attributes(lead),
                              exclude={prev.rep_id: _left_untouched(router, prev.rep_id, hours)})
            out.append(Decision(
                lead_id=lead.id, rep_id=d.rep, policy_name=router.policy_name, policy_version=router.version,
                propensity=max(min(float(d.propensity), 1.0), 1e-9), decided_at=now,
                considered={r: d.excluded.get(r) for r in d.considered}, context=context,
                probabilities=dict(d.probabilities) if d.rep else None, lead_created_at=lead.created_at,
                supersedes=prev.id, supersede_reason=REASON))
        return out

    def record(decisions: list[Decision]) -> bool:
        for d in sorted(decisions, key=lambda d: d.lead_id):  # the store's lock order
            if as_loss:
                deps.store.apply_outcome(d.lead_id, False, now, now=now)
            if not deps.store.record_decision(d):
                raise LostRace(f"lead {d.lead_id} was decided again elsewhere meanwhile")
        return bool(decisions)

    def reread() -> None:  # still in effect under the same decision?
        effective = {a.lead_id: a for a in deps.store.assignments([lead.id for lead, _ in todo], effective=True)}
        pending[:] = [(lead, prev) for lead, prev in todo if (a := effective.get(lead.id)) is not None
                      and a.id == prev.id]

    new = router.commit(decide, record, now, on_redo=reread)
    report.untouched_rerouted += len(new)
    report.count_assigned(new)
    taken_from = {lead.id: router.owner_for(prev.rep_id) for lead, prev in todo}
    write_owners(deps, router, new, report, now, what="untouched lead", taken_from=taken_from, speed=False)
    for lead, prev in todo:
        log.info("lead %s: untouched %g h after it went to %s; re-routed%s", lead.id, hours,
                 router.rep_names.get(prev.rep_id or "", prev.rep_id), " (counted as a loss)" if as_loss else "")
