"""How far a sync cycle may move the ``leads`` watermark: the in-cycle tracker.

Leads arrive in modstamp order. A lead fully handled (written, skipped, or parked for good)
lets the watermark pass it (``done``); a lead that must be pulled again (parked with retries
left, or read but never handled because the cycle stopped) holds it back (``hold``). At the
end the new watermark is the earliest hold or else the latest done, capped at the cycle's
start (a later modstamp may belong to a change still in flight) and never moved backwards.
The store keeps the watermark itself; the cycle commits ``value`` only after the writes it
covers succeeded.
"""

from __future__ import annotations

from datetime import datetime


class Watermark:
    """Tracks how far the leads seen so far were fully handled (leads arrive in modstamp order)."""

    def __init__(self) -> None:
        self.max_done: datetime | None = None
        self.hold_at: datetime | None = None

    def done(self, stamp: datetime) -> None:
        """A lead with this modstamp needs nothing more: the watermark may pass it."""
        self.max_done = stamp if self.max_done is None else max(self.max_done, stamp)

    def hold(self, stamp: datetime) -> None:
        """A lead with this modstamp must be pulled again: the watermark stops at it."""
        self.hold_at = stamp if self.hold_at is None else min(self.hold_at, stamp)

    def value(self, cap: datetime, old: datetime | None) -> datetime | None:
        """The watermark to commit: at most ``cap`` (the cycle's start), never before ``old``."""
        new = self.hold_at if self.hold_at is not None else self.max_done
        if new is None:
            return old
        new = min(new, cap)
        return new if old is None else max(new, old)
