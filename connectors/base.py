"""The one Protocol every CRM connector implements."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from connectors.preflight import CheckItem
from connectors.records import (
    CheckResult,
    LabelledLead,
    Lead,
    LeadSpan,
    LeadUpdate,
    Outcome,
    Removal,
    Rep,
    Unreadable,
    WriteReport,
)


@runtime_checkable
class Connector(Protocol):
    """A CRM seen through the handful of calls leadpilot needs.

    Every method counts the API calls it makes (``api_usage``). Faults are raised as
    ``connectors.errors.CRMError`` subclasses classified by the CRM's ``ErrorTable``.
    """

    crm: str  # "salesforce" | "hubspot"

    def check(self) -> CheckResult: ...

    def ensure_fields(self) -> list[str]:
        """Create leadpilot's custom fields/properties; return what was created (empty: nothing to do)."""
        ...

    def list_reps(self) -> list[Rep]: ...

    def iter_changed_leads(self, since: datetime | None, *, overlap: bool = True,
                           unreadable: Callable[[Unreadable], None] | None = None) -> Iterator[Lead]:
        """Leads modified at or after ``since`` minus the lookback, ascending, de-duplicated.

        ``overlap=False`` drops the lookback: for continuing within one cycle from the last
        modstamp already handled. Consume (or close) the iterator before writing back: HubSpot
        search pages by offset over live results that our own writes reorder.

        Leads deleted or merged away come too where the CRM's pull can return them (Salesforce
        ``queryAll``: ``Lead.deleted``, ``Lead.merged_into``); survivors of a merge carry
        ``Lead.merged_ids``. A record that cannot be mapped is handed to ``unreadable`` (the
        cycle parks it); without a callback it is logged and left out.
        """
        ...

    def get_leads(self, lead_ids: Iterable[str], *,
                  unreadable: Callable[[Unreadable], None] | None = None) -> list[Lead]:
        """The current state of these leads, one query (Salesforce) or batch read (HubSpot) per
        batch of ids: for retrying parked leads by id. A deleted lead comes back with
        ``deleted`` where the CRM still returns it; one that no longer exists is left out."""
        ...

    def iter_removed(self, since: datetime | None) -> Iterator[Removal]:
        """Leads removed since ``since`` minus the lookback that ``iter_changed_leads`` does not
        return (HubSpot archived contacts); nothing where the pull already returns them."""
        ...

    def iter_owned_leads(self, owner_ids: Sequence[str]) -> Iterator[Lead]:
        """Open leads (not converted) owned by these owners: the leads of users who left, routed
        again once when their owners are found inactive (a lead's modstamp does not move when its
        owner is deactivated, so the changed-leads pull would not bring them)."""
        ...

    def inactive_owners(self) -> set[str]:
        """Ids of owners who can no longer work a lead: deactivated users (Salesforce
        ``IsActive = false``), archived owners (HubSpot)."""
        ...

    def iter_history(self, until: datetime | None = None, label: str | None = None) -> Iterator[LabelledLead]:
        """Past leads whose outcome is known (converted or disqualified), for training."""
        ...

    def write(self, updates: Sequence[LeadUpdate]) -> WriteReport:
        """Batched write-back; a result per lead. A fault that stops the write (``StopCycle``,
        ``AuthError``) is raised with the partial report attached as ``err.report``."""
        ...

    def iter_outcomes(self, since: datetime | None) -> Iterator[Outcome]: ...

    def get_owners(self, lead_ids: Iterable[str]) -> dict[str, str | None]:
        """Current owner of each lead (to re-check before overwriting an owner)."""
        ...

    def iter_new_leads(self, since: datetime) -> Iterator[Lead]:
        """Leads created at or after ``since``, oldest first: the fast new-leads pass's one query."""
        ...

    # True when ``open_lead_counts`` costs one call per owner (HubSpot), False for one per call.
    workload_per_owner: bool

    def open_lead_counts(self, owner_ids: Sequence[str]) -> dict[str, int]:
        """Open (not converted, not disqualified) leads each owner holds in the CRM (a rep's
        workload, for ``max_open``); owners absent hold none."""
        ...

    def preflight(self, *, user_ids: Sequence[str] = (), writes_reason: bool = False) -> list[CheckItem]:
        """The live checklist for ``leadpilot check`` (see ``connectors.preflight``): credentials and
        API access, every read field visible and every written field editable for the integration
        user (the routing-reason field only when ``writes_reason``: the routing setting
        ``write_reason`` is on), outcome objects readable, users readable, each of ``user_ids``
        (fallback owner, routing file reps) existing and active, and the permissions/scopes
        leadpilot needs."""
        ...

    def api_usage(self) -> dict[str, int]:
        """API calls made so far by kind: ``read``, ``write``, ``meta``."""
        ...


@runtime_checkable
class BackfillSource(Protocol):
    """What ``leadpilot backfill`` reads besides the ``Connector`` calls: every lead, by creation time."""

    def lead_span(self) -> LeadSpan:
        """Leads in the org, and the first and last creation times: one cheap query."""
        ...

    def iter_created_leads(self, start: datetime, end: datetime, *,
                           unreadable: Callable[[Unreadable], None] | None = None) -> Iterator[Lead]:
        """Every (not deleted) lead created in ``[start, end)``, streamed in constant memory
        (Salesforce: a Bulk API 2.0 query read page by page; HubSpot: the windowed search)."""
        ...
