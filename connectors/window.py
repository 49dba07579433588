"""Incremental-pull windows: where a pull starts, de-duplication, HubSpot re-windowing.

The watermark itself lives in the state store (sync/); a connector only turns
``since`` into a query window. The lookback exists because a modstamp is taken before
commit: a row can become visible after rows with later stamps (Salesforce) and search
indexes lag (HubSpot), so each pull overlaps the previous one and de-duplicates by
(id, modstamp).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SEARCH_CAP = 10_000  # HubSpot search returns at most this many results per query (then 400)


def query_start(since: datetime | None, lookback_seconds: float) -> datetime | None:
    """The lower bound of a pull: ``since - lookback`` (``None``: everything)."""
    return None if since is None else since - timedelta(seconds=lookback_seconds)


@dataclass
class Dedup:
    """Remembers (id, modstamp) pairs seen in one pull; a record changed again passes."""

    seen: set[tuple[str, Any]] = field(default_factory=set)

    def fresh(self, rid: str, stamp: Any) -> bool:
        key = (rid, stamp)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


@dataclass(frozen=True, slots=True)
class SearchWindow:
    """One HubSpot search query of a pull: records with (modstamp, id) at or after a key.

    ``after_id`` is set only when a whole window shared one millisecond: then the window
    continues inside that millisecond by id (the ``hs_object_id`` tie-breaker).
    """

    start_ms: int | None = None
    after_id: str | None = None

    def filter_groups(self, stamp_property: str) -> list[dict[str, Any]]:
        if self.start_ms is None:
            return []
        start = str(self.start_ms)
        if self.after_id is None:
            return [{"filters": [{"propertyName": stamp_property, "operator": "GTE", "value": start}]}]
        return [
            {"filters": [{"propertyName": stamp_property, "operator": "EQ", "value": start},
                         {"propertyName": "hs_object_id", "operator": "GT", "value": self.after_id}]},
            {"filters": [{"propertyName": stamp_property, "operator": "GT", "value": start}]},
        ]

    def next(self, last_ms: int, last_id: str, first_ms: int | None = None) -> SearchWindow:
        """The window after this one was cut at the cap, having last seen (``last_ms``, ``last_id``).

        Restarting at ``>= last_ms`` re-reads that millisecond (de-duplicated) so records sharing
        it are not skipped; when the whole window was one millisecond (``first_ms == last_ms``)
        that would make no progress, so continue within it by id.
        """
        if (self.start_ms is not None and last_ms <= self.start_ms) or first_ms == last_ms:
            return SearchWindow(last_ms, last_id)
        return SearchWindow(last_ms, None)


def must_rewindow(fetched_in_window: int, page_size: int) -> bool:
    """True when the next page would go past the search cap."""
    return fetched_in_window + page_size > SEARCH_CAP
