"""What a routing decision says (``Choice``) and what the daemon hands back after a restart
(``OpenAssignment``), plus the input checks every router entry point shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Choice:
    """One routing decision, complete enough to audit and to evaluate policies off-line.

    ``rep`` is None when no rep was eligible (then ``fallback`` names the configured queue).
    ``probabilities`` is the full choice distribution over eligible reps (log it: off-policy
    evaluation needs it); ``propensity`` is the chosen rep's entry.
    """

    lead_id: str
    rep: str | None
    propensity: float
    considered: tuple[str, ...]
    eligible: tuple[str, ...]
    excluded: dict[str, str]
    probabilities: dict[str, float]
    policy: str
    at: datetime
    reason: str
    fallback: str | None = None
    rule: str | None = None  # the assignment rule the lead matched ("rule 2 (enterprise)"), if any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the decision log."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["at"] = self.at.isoformat()
        out["considered"], out["eligible"] = list(self.considered), list(self.eligible)
        return out


@dataclass(frozen=True)
class OpenAssignment:
    """An open assignment known to the daemon's store, for ``Router.restore_open``."""

    lead_id: str
    rep: str
    assigned_at: datetime
    context: Mapping[str, Any] = field(default_factory=dict)
    propensity: float | None = None


def timestamp(now: datetime) -> float:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"pass a timezone-aware datetime (e.g. datetime.now(timezone.utc)), got naive {now.isoformat()}")
    return now.timestamp()


def check_context(context: Mapping[str, Any]) -> None:
    for key, value in context.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, str | int | float | bool)):
            raise ValueError(f"lead context {key!r} must map a string to str, number, bool or None; got {type(value).__name__}")
