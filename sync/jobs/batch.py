"""What every job that rewrites leads shares (the cycle, rescore, backfill): reading one chunk
of the pull, and the CRM update a score makes."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from connectors.records import Lead, LeadUpdate, Unreadable
from scoring.types import Score
from sync.wiring.deps import Deps


def read_chunk(deps: Deps, since: datetime | None, *, overlap: bool = True,
               unreadable: Callable[[Unreadable], None] | None = None) -> list[Lead]:
    """Up to ``deps.chunk_size`` leads changed since ``since``, read in full before anything is
    written: a live search (HubSpot) pages by offset over results our own writes reorder."""
    leads = deps.connector.iter_changed_leads(since, overlap=overlap, unreadable=unreadable)
    with closing_pull(leads):
        return list(itertools.islice(leads, deps.chunk_size))


@contextmanager
def closing_pull(leads: Iterator[Lead]) -> Iterator[Iterator[Lead]]:
    """Close a pull's generator when the reader stops early (its paging, a Bulk query's result
    stream), whether or not it was read to the end; a plain iterator has nothing to close."""
    try:
        yield leads
    finally:
        close = getattr(leads, "close", None)
        if close is not None:
            close()


def score_update(lead: Lead, s: Score, now: datetime, *, owner: str | None = None,
                 routing_reason: str | None = None) -> LeadUpdate:
    """The write of ``lead``'s score, grade, reasons and opportunity flag (and, from the cycle, its
    owner and routing reason: ``None`` leaves them as they are)."""
    return LeadUpdate(lead_id=lead.id, score=s.score, grade=s.grade, opportunity=s.opportunity,
                      reasons=s.reasons, model_version=s.model_version, scored_at=now,
                      owner_id=owner, routing_reason=routing_reason)
