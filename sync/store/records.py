"""Plain values the state store reads and writes (frozen dataclasses; times are aware UTC)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

LeadStatus = Literal["pending", "scored", "written", "parked", "skipped"]
ModelStatus = Literal["champion", "challenger", "retired"]


@dataclass(frozen=True, slots=True)
class LeadState:
    """What the store remembers about one CRM lead.

    ``status``: ``pending`` (seen, work to do), ``scored`` (scored/decided, write-back
    outstanding), ``written`` (written back), ``parked`` (failed; retried after
    ``parked_until``), ``skipped`` (deliberately not processed).
    """

    lead_id: str
    status: LeadStatus = "pending"
    modstamp: datetime | None = None
    input_hash: str | None = None  # hash of every scoring input: unchanged -> no re-score
    text_hash: str | None = None
    score: float | None = None
    grade: str | None = None
    opportunity: bool | None = None
    model_version: str | None = None
    attempts: int = 0
    last_error: str | None = None
    parked_until: datetime | None = None
    updated_at: datetime | None = None  # set by the store on write when None


@dataclass(frozen=True, slots=True)
class Decision:
    """A routing decision to record (before it is written to the CRM).

    ``considered`` maps every rep that was looked at to ``None`` (eligible) or the reason it
    was excluded (e.g. ``"capacity: 50/50 open"``). ``rep_id=None`` means the fallback owner.
    """

    lead_id: str
    rep_id: str | None
    policy_name: str
    policy_version: int
    propensity: float
    decided_at: datetime
    considered: Mapping[str, str | None] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    shadow: bool = False
    # the full choice distribution over eligible reps (off-policy evaluation checks support with it)
    probabilities: Mapping[str, float] | None = None
    # when the lead was created in the CRM (speed to lead: from it to the owner write)
    lead_created_at: datetime | None = None
    # the id of the decision in effect this one replaces (a queued lead re-decided, an
    # untouched lead re-routed) and why; the store supersedes it in the same transaction
    supersedes: int | None = None
    supersede_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """A recorded decision with its write-back and outcome status."""

    id: int
    lead_id: str
    rep_id: str | None
    policy_name: str
    policy_version: int
    propensity: float
    considered: dict[str, str | None]
    context: dict[str, Any]
    decided_at: datetime
    written_at: datetime | None
    shadow: bool
    outcome: Literal["won", "lost"] | None
    outcome_at: datetime | None
    reward_applied_at: datetime | None
    probabilities: dict[str, float] | None = None
    lead_created_at: datetime | None = None
    superseded_at: datetime | None = None  # None: the decision in effect for its lead
    superseded_reason: str | None = None

    @property
    def queued(self) -> bool:
        """In effect, live (not shadow) and left with the fallback owner: waiting for a rep."""
        return (self.rep_id is None and not self.shadow and self.superseded_at is None and self.outcome is None
                and self.reward_applied_at is None)


@dataclass(frozen=True, slots=True)
class PolicyState:
    """One saved version of a routing policy's JSON state."""

    name: str
    version: int
    state: dict[str, Any]
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a job (``sync``, ``rewards``, ``train``, ...)."""

    id: int
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str  # "running" until finished, then "ok" | "failed" | "stopped" | "interrupted" (killed)
    counts: dict[str, int]
    api_calls: dict[str, int]
    errors: str | None


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A trained scoring model in the registry."""

    version: str
    path: str
    metrics: dict[str, Any]
    status: ModelStatus
    created_at: datetime
    status_changed_at: datetime
