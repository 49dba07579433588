"""A rep's open load as the CRM counts it: what ``max_open`` is checked against.

A rep who already holds 50 open leads in the CRM is at capacity whatever leadpilot assigned
itself. ``Workload`` keeps, per rep, the CRM's count of open, unconverted leads they own and
when it was read; a rep's load is that count plus leadpilot's live decisions the count could
not include yet (not written, or written since the read: ``Store.load_since``).

Cost: Salesforce answers for every rep in one aggregate query, read each cycle. HubSpot needs
one search per rep, so after a first read of every capped rep (one call each, once per
process) each cycle re-reads at most ``CALLS_PER_CYCLE`` reps, the stalest first; the others
keep their last count plus leadpilot's writes since (leads a rep closed meanwhile still count
until the re-read: the error is on the side of not overloading anyone). Reps without
``max_open`` are not read at all (nothing checks their load).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base import Connector

log = logging.getLogger(__name__)

CALLS_PER_CYCLE = 2  # workload reads per cycle at most (the api_calls benchmark's goal)


@dataclass
class Workload:
    """The CRM's open-lead count per rep, with the time each was read."""

    counts: dict[str, tuple[int, datetime]] = field(default_factory=dict)

    def refresh(self, connector: Connector, rep_ids: Iterable[str], now: datetime) -> int:
        """Re-read the counts of ``rep_ids`` (all of them in one call, or the stalest
        ``CALLS_PER_CYCLE`` where the CRM answers per owner). Returns the API calls made."""
        ids = sorted(set(rep_ids))
        if not ids:
            return 0
        per_owner = bool(getattr(connector, "workload_per_owner", False))
        if per_owner:  # reps never read are read at once (the first cycle), then the stalest few
            unread = [r for r in ids if r not in self.counts]
            ids = unread or sorted(ids, key=lambda r: self.counts[r][1])[:CALLS_PER_CYCLE]
        got = connector.open_lead_counts(ids)
        for rid in ids:
            self.counts[rid] = (int(got.get(rid, 0)), now)
        return len(ids) if per_owner else 1

    def loads(self, store: Any) -> dict[str, int]:
        """Each read rep's load now: the CRM's count plus leadpilot's decisions since that read."""
        out: dict[str, int] = {}
        by_time: dict[datetime, list[str]] = {}
        for rid, (_, at) in self.counts.items():
            by_time.setdefault(at, []).append(rid)
        for at, rids in by_time.items():
            since = store.load_since(at)
            for rid in rids:
                out[rid] = self.counts[rid][0] + since.get(rid, 0)
        return out

    def read_at(self) -> datetime | None:
        """When the oldest count was read (None before the first read)."""
        return min((at for _, at in self.counts.values()), default=None)
