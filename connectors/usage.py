"""API call counting by kind and the CRM's own budget figures, parsed from response headers."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.records import ApiBudget

KINDS = ("read", "write", "meta", "auth")
_SF_LIMIT = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


def parse_sforce_limit_info(value: str | None) -> ApiBudget | None:
    """``Sforce-Limit-Info: api-usage=18/15000`` → ApiBudget (rolling 24 h)."""
    m = _SF_LIMIT.search(value or "")
    if not m:
        return None
    used, limit = int(m.group(1)), int(m.group(2))
    return ApiBudget(used=used, limit=limit, remaining=max(limit - used, 0), window="rolling 24h")


def parse_hubspot_headers(headers: Mapping[str, str] | None) -> ApiBudget | None:
    """``X-HubSpot-RateLimit-Daily`` / ``-Daily-Remaining`` → ApiBudget (search responses carry none)."""
    h = {k.lower(): v for k, v in (headers or {}).items()}
    try:
        limit = int(h["x-hubspot-ratelimit-daily"])
        remaining = int(h["x-hubspot-ratelimit-daily-remaining"])
    except (KeyError, ValueError):
        return None
    return ApiBudget(used=max(limit - remaining, 0), limit=limit, remaining=remaining, window="daily")


@dataclass
class UsageMeter:
    """Counts every HTTP request a connector makes, by kind, and keeps the latest budget.

    ``auth`` (token requests) is counted apart: CRMs do not charge logins to the API allocation.
    """

    counts: Counter[str] = field(default_factory=Counter)
    budget: ApiBudget = field(default_factory=ApiBudget)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, budget: ApiBudget | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown API call kind {kind!r}; one of {KINDS}")
        with self._lock:
            self.counts[kind] += 1
            if budget is not None:
                self.budget = budget

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: self.counts[k] for k in KINDS}
