"""Owners: which leads need one, the routing decision that picks one, and the last look before writing it.

``OwnerRules`` says which current owners mean "this lead needs an owner": none, a queue,
the integration user, a user who was deactivated or removed (``routing.reroute_inactive_owners``,
on by default; such a lead is "re-routed" and counted) — and any owner at all with
``reassign_human_owned``. ``decide_owners``
asks the routing policy for such leads that have no decision yet (from the routing context
``lead_context`` builds), and ``recheck_owners`` asks the CRM for the current owners right
before the write-back: a rep who took the lead in the meantime keeps it (re-check the
current owner before overwriting it). The cycle records the decisions and writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from connectors.base import Connector
from connectors.records import Lead, Rep
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
) -> list[Decision]:
    """New routing decisions for leads that need an owner and have none recorded."""
    out: list[Decision] = []
    for lead, score in zip(leads, scores, strict=True):
        if lead.id in assigned or lead.stage is not None or not rules.needs_owner(lead.owner_id):
            continue  # decided before, owned by a human, or already closed (nothing left to route)
        context = routing_context(lead, score, context_fields)
        d = router.assign(lead.id, context, now, attrs=lead_attributes(lead))  # territories read the lead
        out.append(Decision(
            lead_id=lead.id, rep_id=d.rep, policy_name=router.policy_name, policy_version=router.version,
            propensity=max(min(float(d.propensity), 1.0), 1e-9), decided_at=now,
            considered={r: d.excluded.get(r) for r in d.considered},
            context=context, shadow=shadow, probabilities=dict(d.probabilities) if d.rep else None,
        ))
    return out


def recheck_owners(
    connector: Connector, rules: OwnerRules, owners: Mapping[str, str | None]
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Split planned owner writes (lead id -> owner) by the CRM's current owners.

    Returns ``(keep, conflicts)``: ``keep`` the writes still to make; ``conflicts`` lead id ->
    the owner a human set meanwhile (that write is dropped). A lead that already has the
    planned owner (written before a crash) is in neither. No owners: no API call.
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
        if rules.needs_owner(cur):
            keep[lid] = rep
        else:
            conflicts[lid] = cur
    return keep, conflicts
