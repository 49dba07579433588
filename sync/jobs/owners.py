"""Owners: which leads need one, the routing decision that picks one, and the last look before writing it.

``OwnerRules`` says which current owners mean "this lead needs an owner": none, a queue,
the integration user, a user who was deactivated or removed (``routing.reroute_inactive_owners``,
on by default; such a lead is "re-routed" and counted) — and any owner at all with
``reassign_human_owned``. ``decide_owners``
asks the routing policy for such leads that have no decision yet (from the routing context
``lead_context`` builds), ``decide_again`` for queued leads (left with the fallback owner) until
a rep can take them, and ``recheck_owners`` asks the CRM for the current owners right
before the write-back: a rep who took the lead in the meantime keeps it (re-check the
current owner before overwriting it). The cycle records the decisions and writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import Connector
from connectors.records import ROUTING_REASON_CHARS, Lead, Rep
from scoring.types import Score
from sync.config.settings import Settings
from sync.jobs.lead_context import lead_attributes, routing_context
from sync.store.records import Assignment, Decision
from sync.wiring.routing import RouterBox


@dataclass
class OwnerRules:
    """Which current owners mean "this lead needs an owner" (empty always does).

    ``reassign_from``: queues and the integration user, from settings plus what the CRM
    reports as queues. A human owner is never replaced unless ``reassign_human_owned``.
    """

    reassign_from: frozenset[str] = frozenset()
    reassign_human_owned: bool = False
    # Owners who can no longer work a lead (deactivated / removed users); empty when re-routing
    # them is off. ``checked_at``: when the CRM was last asked (the cycle refreshes it hourly).
    inactive: frozenset[str] = frozenset()
    checked_at: datetime | None = None
    # Inactive owners whose open leads this process has already fetched to route them again.
    swept: frozenset[str] = frozenset()

    def needs_owner(self, owner_id: str | None) -> bool:
        if not owner_id:
            return True
        return owner_id in self.reassign_from or owner_id in self.inactive or self.reassign_human_owned

    def owner_gone(self, owner_id: str | None) -> bool:
        """The lead's owner was deactivated or removed (and re-routing such leads is on)."""
        return bool(owner_id) and owner_id in self.inactive

    @classmethod
    def build(cls, settings: Settings, reps: Sequence[Rep], integration_user: str | None,
              inactive: Iterable[str] = (), checked_at: datetime | None = None) -> OwnerRules:
        ids = set(settings.routing.reassign_from)
        ids.update(r.id for r in reps if r.is_queue)
        if integration_user:
            ids.add(integration_user)
        gone: frozenset[str] = frozenset()
        if settings.routing.reroute_inactive_owners:
            gone = frozenset({*(r.id for r in reps if not r.active and not r.is_queue), *inactive} - ids)
        return cls(frozenset(ids), settings.routing.reassign_human_owned, gone, checked_at)


def decide_owners(
    router: RouterBox, rules: OwnerRules, leads: Sequence[Lead], scores: Sequence[Score],
    assigned: Mapping[str, Assignment], now: datetime, *, context_fields: Sequence[str] | None, shadow: bool,
    widen_after: timedelta | None = None,
) -> list[Decision]:
    """New routing decisions for leads that need an owner and have none in effect, or whose
    decision in effect left them queued with the fallback owner (decided again: see
    ``decide_again``)."""
    out: list[Decision] = []
    for lead, score in zip(leads, scores, strict=True):
        prev = assigned.get(lead.id)
        if (prev is not None and not prev.queued) or lead.stage is not None or not rules.needs_owner(lead.owner_id):
            continue  # decided before, owned by a human, or already closed (nothing left to route)
        d = _decide(router, lead, routing_context(lead, score, context_fields), now, shadow=shadow, prev=prev,
                    widen_after=widen_after)
        if d is not None:
            out.append(d)
    return out


def decide_again(
    router: RouterBox, queued: Sequence[tuple[Lead, Assignment]], now: datetime, *,
    context_fields: Sequence[str] | None, widen_after: timedelta | None = None,
) -> list[Decision]:
    """Queued leads (decision in effect: the fallback owner) decided again from their current
    CRM record and the score they were routed with. A lead no rep can take yet stays queued
    (no new decision: the log keeps the first one, with its exclusions); one that waited
    ``widen_after`` or longer may go to a rep outside working hours."""
    out: list[Decision] = []
    for lead, prev in queued:
        context = routing_context(lead, None, context_fields)
        if "score" in prev.context:
            context["score"] = prev.context["score"]
        d = _decide(router, lead, context, now, shadow=False, prev=prev, widen_after=widen_after)
        if d is not None:
            out.append(d)
    return out


def _decide(router: RouterBox, lead: Lead, context: dict[str, Any], now: datetime, *, shadow: bool,
            prev: Assignment | None, widen_after: timedelta | None) -> Decision | None:
    widen = prev is not None and widen_after is not None and now - prev.decided_at >= widen_after
    d = router.assign(lead.id, context, now, attrs=lead_attributes(lead), widen=widen)  # territories read the lead
    if prev is not None and d.rep is None:
        return None  # still no rep who can take it: it stays queued under its first decision
    return Decision(
        lead_id=lead.id, rep_id=d.rep, policy_name=router.policy_name, policy_version=router.version,
        propensity=max(min(float(d.propensity), 1.0), 1e-9), decided_at=now,
        considered={r: d.excluded.get(r) for r in d.considered},
        context=context, shadow=shadow, probabilities=dict(d.probabilities) if d.rep else None,
        lead_created_at=lead.created_at, supersedes=prev.id if prev is not None else None,
        supersede_reason=None if prev is None else
        "queued past its SLA: decided again outside working hours" if widen else "queued lead decided again",
    )


def routing_reason(d: Decision, names: Mapping[str, str], limit: int = ROUTING_REASON_CHARS) -> str:
    """The decision in one line for the CRM record (at most ``limit`` characters), by rep name:
    who got the lead and with what probability, or that it is queued; then why each rep left out
    was left out."""
    name = names.get
    eligible = [r for r, why in d.considered.items() if why is None]
    if d.rep_id is not None:
        head = (f"{name(d.rep_id, d.rep_id)}: chosen by {d.policy_name} (p={d.propensity:.2f}) "
                f"among {len(eligible)} eligible of {len(d.considered)}")
    else:
        head = f"Queued: none of {len(d.considered)} reps could take it"
    parts = [f"{name(r, r)}: {why}" for r, why in d.considered.items() if why]
    text = "; ".join([head, *parts])
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def recheck_owners(
    connector: Connector, rules: OwnerRules, owners: Mapping[str, str | None],
    taken_from: Mapping[str, str | None] | None = None,
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Split planned owner writes (lead id -> owner) by the CRM's current owners.

    Returns ``(keep, conflicts)``: ``keep`` the writes still to make; ``conflicts`` lead id ->
    the owner a human set meanwhile (that write is dropped). A lead that already has the
    planned owner (written before a crash) is in neither. ``taken_from``: lead id -> the owner
    the write replaces on purpose (an untouched lead's rep); a lead still with that owner is
    kept, one with any other human owner is a conflict. No owners: no API call.
    """
    if not owners:
        return {}, {}
    current = connector.get_owners(list(owners))
    keep: dict[str, str | None] = {}
    conflicts: dict[str, str | None] = {}
    for lid, rep in owners.items():
        cur = current.get(lid)
        if cur == rep:
            continue  # written before a crash: nothing to change
        if rules.needs_owner(cur) or (taken_from is not None and cur is not None and cur == taken_from.get(lid)):
            keep[lid] = rep
        else:
            conflicts[lid] = cur
    return keep, conflicts
