"""The vocabulary shared by every CRM connector and the daemon.

Plain frozen dataclasses and the attribute lists they share: no I/O, no CRM specifics. A
connector maps its raw records to these (its ``mapping`` module: pure functions) and back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Attribute names scoring sees for a CRM lead. Order is stable (used for feature declarations).
LEAD_ATTRIBUTES: tuple[str, ...] = (
    "title",
    "company",
    "industry",
    "employees",
    "revenue",
    "country",
    "source",
    "status",
)
# Lead attributes held as numbers (the others are text).
NUMERIC_ATTRIBUTES: tuple[str, ...] = ("employees", "revenue")
# LeadUpdate attributes written to leadpilot's own CRM fields (created by ``ensure_fields``); the
# owner is written too, but to the CRM's own owner field.
WRITTEN_FIELDS: tuple[str, ...] = ("score", "grade", "opportunity", "reasons", "model_version", "scored_at")
# Written only when the admin turns it on (LEADPILOT_ROUTING__WRITE_REASON) and never read back, so
# a query does not fail on an org where the field has not been created yet; init-crm creates it.
OPTIONAL_WRITTEN_FIELDS: tuple[str, ...] = ("routing_reason",)


def written_fields(writes_reason: bool) -> tuple[str, ...]:
    """leadpilot's own fields a configuration writes (so ``leadpilot check`` requires): the
    routing reason only when ``writes_reason`` (LEADPILOT_ROUTING__WRITE_REASON) is on."""
    return WRITTEN_FIELDS + (OPTIONAL_WRITTEN_FIELDS if writes_reason else ())


# The routing reason is a plain text field on the record: short enough for a list view column.
ROUTING_REASON_CHARS = 255
# Attributes the CRM changes while a lead is worked; not scoring inputs (see ``Lead.input_hash``).
UNSCORED_ATTRIBUTES: frozenset[str] = frozenset({"status"})
# Lead.stage values: sales outcomes the CRM shows on the lead itself (see ``Lead.stage``).
STAGES: tuple[str, ...] = ("converted", "disqualified")


@dataclass(frozen=True, slots=True)
class Lead:
    """A lead (Salesforce Lead, HubSpot contact or lead object) as leadpilot sees it."""

    id: str
    created_at: datetime | None
    modified_at: datetime
    owner_id: str | None
    title: str | None = None
    company: str | None = None
    industry: str | None = None
    employees: float | None = None
    revenue: float | None = None
    country: str | None = None
    source: str | None = None
    status: str | None = None
    email: str | None = None
    text: str = ""  # the lead card: configured free-text fields joined into one string
    # Where the lead stands as a sales outcome: "converted" (an opportunity / deal was made
    # from it), "disqualified" (closed without one), or None while it is still being worked.
    # The cycle feeds this to routing as an early, lead-level reward (see sync.jobs.cycle).
    stage: str | None = None
    # leadpilot's own fields as currently stored in the CRM (to recognise our own write-backs)
    written: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Removed in the CRM (Salesforce recycle bin, seen through queryAll): nothing to score or
    # route any more; its open assignment is closed. ``merged_into``: the surviving record
    # when the removal was a merge (Salesforce ``MasterRecordId``).
    deleted: bool = False
    merged_into: str | None = None
    # Records merged into this one (HubSpot ``hs_merged_object_ids``): they no longer exist.
    merged_ids: tuple[str, ...] = ()
    # When a rep last logged an activity on it (Salesforce ``LastActivityDate``, a date: read as
    # the end of that day; HubSpot ``hs_last_sales_activity_timestamp``): untouched-lead re-routing
    last_activity_at: datetime | None = None

    def features(self) -> dict[str, Any]:
        """The mapping scoring and allocation consume: structured attributes plus ``text``."""
        out: dict[str, Any] = {name: getattr(self, name) for name in LEAD_ATTRIBUTES}
        out["text"] = self.text
        return out

    @property
    def input_hash(self) -> str:
        """Hash of what scoring reads (``features()``): equal hashes mean nothing to re-score.

        leadpilot's own write-backs bump the modstamp but leave this unchanged, which is how
        a cycle recognises its own writes (crm-apis.md pitfall 7). ``status`` is not hashed:
        reps move it while working a lead and scoring does not read it (it leaks the outcome),
        so a status change alone must not cost a re-score and a write-back.
        """
        inputs = {k: v for k, v in self.features().items() if k not in UNSCORED_ATTRIBUTES}
        blob = json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A changed record the connector could not turn into a ``Lead`` (e.g. its modification
    stamp is missing or not a date-time). Never dropped: the cycle parks it by ``id`` with
    ``reason`` and fetches it again by id later. ``id`` is None only for a record without
    one (neither CRM sends such a record)."""

    id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Removal:
    """A lead removed from the CRM that the changed-leads pull does not return (a HubSpot
    archived contact, a contact merged into another): its open assignment is closed.
    ``merged_into``: the surviving record of a merge."""

    lead_id: str
    removed_at: datetime | None = None
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class LabelledLead:
    """A past lead with its known outcome, for training."""

    lead: Lead
    converted: bool
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rep:
    """A CRM owner. Capacity, territories and hours come from the routing file, not the CRM."""

    id: str
    name: str
    email: str | None
    active: bool = True
    is_queue: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """A closed opportunity/deal linked back to the lead it came from."""

    lead_id: str
    opportunity_id: str
    won: bool
    closed_at: datetime
    owner_id: str | None = None
    amount: float | None = None


@dataclass(frozen=True, slots=True)
class LeadUpdate:
    """What leadpilot writes to one lead. ``None`` means: leave that field alone."""

    lead_id: str
    score: int | None = None
    grade: str | None = None
    opportunity: bool | None = None
    reasons: str | None = None
    model_version: str | None = None
    scored_at: datetime | None = None
    owner_id: str | None = None
    # Why the lead went where it went, in words (at most ROUTING_REASON_CHARS characters)
    routing_reason: str | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The CRM's answer for one lead of a batch write."""

    lead_id: str
    ok: bool
    error_code: str | None = None
    message: str | None = None
    transient: bool = False  # True: retry in a later batch (e.g. UNABLE_TO_LOCK_ROW)


@dataclass(slots=True)
class WriteReport:
    """Per-lead results of ``Connector.write``; every input lead appears exactly once."""

    results: list[WriteResult] = field(default_factory=list)
    api_calls: int = 0

    @property
    def succeeded(self) -> list[str]:
        return [r.lead_id for r in self.results if r.ok]

    @property
    def failed(self) -> list[WriteResult]:
        return [r for r in self.results if not r.ok]


@dataclass(frozen=True, slots=True)
class ApiBudget:
    """What the CRM says about our API allowance, parsed from its response headers."""

    used: int | None = None
    limit: int | None = None
    remaining: int | None = None
    window: str = "daily"

    @property
    def fraction_left(self) -> float | None:
        if self.remaining is not None and self.limit:
            return self.remaining / self.limit
        return None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What ``Connector.check`` found: auth works, permissions, budget, problems in words."""

    ok: bool
    crm: str
    user: str | None
    budget: ApiBudget
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LeadSpan:
    """How many leads an org holds and when the first and the last were created (one cheap
    query): what a backfill plans its ``CreatedDate`` chunks from. ``first``/``last`` are None
    when there are no leads."""

    count: int
    first: datetime | None
    last: datetime | None
