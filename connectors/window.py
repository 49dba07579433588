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


# HubSpot search limits (crm-apis.md §6): one sorting rule, at most 5 filter groups, 10 filters
# in a group, 25 filters in all, 200 results a page. The API answers 400 past any of them.
MAX_SORTS, MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS, MAX_LIMIT = 1, 5, 10, 25, 200
ID_PROPERTY = "hs_object_id"


def search_limit_problem(body: dict[str, Any]) -> str | None:
    """What in a search body HubSpot would refuse (None: within the limits).

    Checked before sending, so a query built wrong fails here with the limit it breaks
    instead of as a 400 in the middle of a pull.
    """
    sorts = body.get("sorts") or []
    groups = body.get("filterGroups") or []
    sizes = [len(g.get("filters") or []) for g in groups]
    if len(sorts) > MAX_SORTS:
        return f"{len(sorts)} sorting rules; HubSpot takes {MAX_SORTS}"
    if len(groups) > MAX_GROUPS:
        return f"{len(groups)} filter groups; HubSpot takes at most {MAX_GROUPS}"
    if any(n > MAX_FILTERS_PER_GROUP for n in sizes):
        return f"a filter group of {max(sizes)} filters; HubSpot takes at most {MAX_FILTERS_PER_GROUP} a group"
    if sum(sizes) > MAX_FILTERS:
        return f"{sum(sizes)} filters; HubSpot takes at most {MAX_FILTERS} in all"
    if not 0 < int(body.get("limit", 10)) <= MAX_LIMIT:
        return f"limit {body.get('limit')}; HubSpot takes 1 to {MAX_LIMIT}"
    return None


@dataclass(frozen=True, slots=True)
class SearchWindow:
    """One HubSpot search query of a pull, sorted by ONE property (a search takes one sorting rule).

    ``mode``:

    - ``"from"``: records with stamp ``>= start_ms`` (all when ``start_ms`` is None), sorted by
      the stamp. Records sharing a millisecond come in no defined order.
    - ``"within"``: only the millisecond ``start_ms``, sorted by ``hs_object_id``, after
      ``after_id`` (a filter, not a second sort): how a millisecond holding more records than
      one query may return is read exactly.
    - ``"after"``: records with stamp ``> start_ms``, sorted by the stamp (what follows a
      millisecond read ``within``).
    """

    start_ms: int | None = None
    mode: str = "from"
    after_id: str | None = None

    def filter_groups(self, stamp_property: str, extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """One filter group (the window's bounds AND ``extra``), or none for an unbounded window."""
        filters: list[dict[str, Any]] = []
        if self.start_ms is not None:
            op = {"from": "GTE", "within": "EQ", "after": "GT"}[self.mode]
            filters.append({"propertyName": stamp_property, "operator": op, "value": str(self.start_ms)})
        if self.after_id is not None:
            filters.append({"propertyName": ID_PROPERTY, "operator": "GT", "value": self.after_id})
        filters += extra or []
        return [{"filters": filters}] if filters else []

    def sorts(self, stamp_property: str) -> list[dict[str, str]]:
        """The one sorting rule: the stamp, or the id inside one millisecond."""
        prop = ID_PROPERTY if self.mode == "within" else stamp_property
        return [{"propertyName": prop, "direction": "ASCENDING"}]

    def next(self, last_ms: int, last_id: str, first_ms: int | None = None) -> SearchWindow:
        """The window after this one was cut at the cap, having last seen (``last_ms``, ``last_id``).

        Inside one millisecond the results are sorted by id, so the next window continues after
        ``last_id``. Otherwise restarting at ``>= last_ms`` re-reads that millisecond (callers
        de-duplicate) so records sharing it are not skipped; when the whole window was one
        millisecond (``first_ms == last_ms``) that would make no progress, so that millisecond
        is read by id.
        """
        if self.mode == "within":
            return SearchWindow(self.start_ms, "within", last_id)
        if first_ms == last_ms or (self.start_ms is not None and last_ms <= self.start_ms):
            return SearchWindow(last_ms, "within")
        return SearchWindow(last_ms, "from")

    def after_drained(self) -> SearchWindow | None:
        """What follows once this window's results are all read: past a millisecond read by id,
        the records after it; nothing after a ``from``/``after`` window."""
        return SearchWindow(self.start_ms, "after") if self.mode == "within" else None


def must_rewindow(fetched_in_window: int, page_size: int) -> bool:
    """True when the next page would go past the search cap."""
    return fetched_in_window + page_size > SEARCH_CAP
