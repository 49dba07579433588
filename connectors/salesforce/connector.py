"""The Salesforce connector (simple-salesforce): incremental SOQL pulls, batched writes, outcomes.

Call floor for N changed leads: ⌈N/2000⌉ query pages + ⌈N/200⌉ sObject Collections PATCHes
(Bulk API 2.0, about 7 calls per job, above ``bulk_threshold``).

Deleted and merged leads cost no extra call: the incremental pull runs through ``queryAll``,
which also returns recycle-bin rows (``IsDeleted = true``, their ``SystemModstamp`` is the
deletion); a merge deletes the losers, each with ``MasterRecordId`` = the survivor.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from connectors.batching import metered_write
from connectors.errors import CRMError, Kind
from connectors.preflight import CheckItem
from connectors.records import (
    OPTIONAL_WRITTEN_FIELDS,
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
    WriteResult,
)
from connectors.retry import Retrier, RetryPolicy
from connectors.salesforce import mapping as m
from connectors.salesforce.bulk import ingest_update, query_rows
from connectors.salesforce.errors import SALESFORCE, from_salesforce
from connectors.salesforce.session import build_session, login, metadata_api, refresher
from connectors.salesforce.settings import FieldNames, SalesforceSettings
from connectors.salesforce.setup import OrgApi, Plan, SetupOptions, plan_setup
from connectors.usage import UsageMeter
from connectors.values import MappingError, to_datetime
from connectors.window import Dedup, query_start

log = logging.getLogger(__name__)
BATCH_HEADER = {"Sforce-Query-Options": "batchSize=2000"}
COLLECTION_SIZE = 200  # sObject Collections maximum
IN_CHUNK = 300  # ids per IN (...) list: keeps a SOQL statement far below its length limit
# Custom fields leadpilot creates on Lead: key → (Metadata API type, extra attributes, label)
CUSTOM_FIELDS: dict[str, tuple[str, dict[str, Any], str]] = {
    "score": ("Number", {"precision": 3, "scale": 0}, "LeadPilot Score"),
    "grade": ("Text", {"length": 2}, "LeadPilot Grade"),
    "opportunity": ("Checkbox", {"defaultValue": "false"}, "LeadPilot Opportunity"),
    "reasons": ("LongTextArea", {"length": 32000, "visibleLines": 5}, "LeadPilot Reasons"),
    "model_version": ("Text", {"length": 80}, "LeadPilot Model Version"),
    "scored_at": ("DateTime", {}, "LeadPilot Scored At"),
    "routing_reason": ("Text", {"length": 255}, "LeadPilot Routing Reason"),
}


class SalesforceConnector:
    """``Connector`` for Salesforce Leads. Built by ``connectors.salesforce.connect``."""

    crm = "salesforce"

    def __init__(
        self,
        settings: SalesforceSettings,
        fields: FieldNames,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        policy: RetryPolicy | None = None,
        max_reasons: int = 32_000,
        stale_days: int = 90,
        routing_fields: Sequence[str] = (),
    ) -> None:
        self.settings, self.now, self.sleep = settings, now, sleep
        self.fmap = m.FieldMap.build(settings.source_fields, settings.text_fields, fields.model_dump(),
                                     tuple(routing_fields))
        self.meter = UsageMeter()
        self.max_reasons, self.stale_after = max_reasons, timedelta(days=stale_days)
        self._session = build_session(settings, self.meter)
        self._refresh = refresher(settings)
        self.retrier = Retrier(
            policy or RetryPolicy(), lambda e, op: from_salesforce(e, op, self.now()), sleep,
            rng or random.Random(0), refresh=self._do_refresh if self._refresh else None,
        )
        self._sf: Salesforce | None = None

    # ------------------------------------------------------------------ plumbing
    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self.retrier.call("login", lambda: login(self.settings, self._session))
        return self._sf

    def _do_refresh(self) -> None:
        if self._sf is None or self._refresh is None:
            self._sf = login(self.settings, self._session)
        else:
            self._refresh(self._sf)

    def _call(self, operation: str, fn: Callable[[], Any]) -> Any:
        return self.retrier.call(operation, fn)

    def _query(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Rows of a SOQL query, page by page (2000 a page); each page retried on its own.

        ``query`` + ``query_more`` (what ``query_all_iter`` runs) so that a fault on page k
        resumes at page k instead of restarting the whole query. ``include_deleted``: through
        ``queryAll``, recycle-bin rows included (the cursor URLs then name ``queryAll`` too).
        """
        page = self._call("query", lambda: self.sf.query(soql, include_deleted=include_deleted, headers=BATCH_HEADER))
        seen_cursors: set[str] = set()
        while True:
            yield from page.get("records", [])
            cursor = page.get("nextRecordsUrl")
            if page.get("done", True) or not cursor:
                return
            if cursor in seen_cursors:
                raise RuntimeError(f"Salesforce returned the page cursor {cursor} twice; stopping this pull")
            seen_cursors.add(cursor)
            page = self._call("query_more", self._more(cursor))

    def _more(self, cursor: str) -> Callable[[], Any]:
        return lambda: self.sf.query_more(cursor, identifier_is_url=True, headers=BATCH_HEADER)

    def _leads(self, rows: Iterable[dict[str, Any]],
               unreadable: Callable[[Unreadable], None] | None = None) -> Iterator[Lead]:
        dedup = Dedup()
        for row in rows:
            try:
                lead = m.lead_from_record(row, self.fmap)
            except MappingError as exc:
                if unreadable is None:
                    log.warning("skipping a Salesforce record: %s", exc)
                else:
                    unreadable(Unreadable(m.record_id(row), str(exc)))
                continue
            if dedup.fresh(lead.id, lead.modified_at):
                yield lead

    # ------------------------------------------------------------------ Connector
    def check(self) -> CheckResult:
        """Auth works, leadpilot's fields exist on Lead, and what is left of the API budget."""
        problems: list[str] = []
        try:
            names = self._lead_field_names()
        except CRMError as err:
            return CheckResult(False, self.crm, self._user(), self.meter.budget, (str(err),))
        missing = [self.fmap.written[k] for k in CUSTOM_FIELDS
                   if k not in OPTIONAL_WRITTEN_FIELDS and self.fmap.written[k].lower() not in names]
        missing += [f for f in (*self.fmap.source.values(), *self.fmap.text, *self.fmap.routing)
                    if f.lower() not in names]
        if missing:
            problems.append(f"fields missing on Lead: {', '.join(missing)} (run `leadpilot init-crm` for "
                            "leadpilot's own, or fix salesforce.source_fields/text_fields or the routing file's fields)")
        frac = self.meter.budget.fraction_left
        if frac is not None and frac < 0.1:
            problems.append(f"only {self.meter.budget.remaining} API calls left of {self.meter.budget.limit} (24 h)")
        return CheckResult(not problems, self.crm, self._user(), self.meter.budget, tuple(problems))

    def preflight(self, *, user_ids: Sequence[str] = (), writes_reason: bool = False) -> list[CheckItem]:
        """The live checklist for ``leadpilot check`` (``connectors.salesforce.preflight``)."""
        from connectors.salesforce import preflight

        return preflight.run(self, user_ids, writes_reason=writes_reason)

    def _user(self) -> str | None:
        return self.settings.login_username

    def _lead_field_names(self) -> set[str]:
        sf: Any = self.sf
        desc = self._call("describe Lead", lambda: sf.Lead.describe())
        return {str(f["name"]).lower() for f in desc.get("fields", [])}

    def ensure_fields(self) -> list[str]:
        """Create leadpilot's custom fields on Lead (Metadata API) and give the integration user
        access to them (permission set ``LeadPilot_Integration``); return the fields created.

        A field created through Metadata is visible to nobody until a permission set grants it:
        without the grant the first sync would fail with ``INVALID_FIELD``.
        """
        created: list[str] = []
        if self._daemon_ready():
            return created  # one describe: the fields exist and the integration user may use them
        plan = self._plan(None, full=False, created=created)
        for step in plan.steps:
            step.apply()
        return created

    def init_crm(self, rep_ids: Sequence[str] = (), *, dry_run: bool = False) -> list[str]:
        """Everything a rep and the daemon need (``connectors.salesforce.setup``); the changes made,
        or with ``dry_run`` the changes it would make. An empty list: nothing to change.

        ``rep_ids``: the routing file's reps, who get the reps' permission set unless
        ``LEADPILOT_SALESFORCE__REP_ACCESS`` names a profile.
        """
        plan = self._plan(self.setup_options(rep_ids), full=True, created=[])
        if not dry_run:
            for step in plan.steps:
                log.info("init-crm: %s", step.what)
                step.apply()
        return [step.what for step in plan.steps]

    def setup_options(self, rep_ids: Sequence[str]) -> SetupOptions:
        """The init-crm options from settings: ``rep_access`` and ``layouts``; ``rep_ids``: the
        routing file's reps (used unless ``rep_access`` names a profile)."""
        access = self.settings.rep_access.strip()
        kind, _, name = access.partition(":")
        if access and (kind not in ("profile", "permission_set_group") or not name.strip()):
            raise ValueError(f"LEADPILOT_SALESFORCE__REP_ACCESS: {access!r} is not understood; leave it empty for the "
                             "reps of the routing file, or e.g. LEADPILOT_SALESFORCE__REP_ACCESS='profile:Standard User' "
                             "or LEADPILOT_SALESFORCE__REP_ACCESS=permission_set_group:Sales_Reps")
        return SetupOptions(rep_ids=tuple(rep_ids), rep_profile=name.strip() if kind == "profile" else None,
                            rep_group=name.strip() if kind == "permission_set_group" else None,
                            layouts=self.settings.layouts)

    def _lead_fields(self) -> dict[str, dict[str, Any]]:
        """Lead's fields as the integration user sees them (lower-case name → describe entry)."""
        sf: Any = self.sf
        desc = self._call("describe Lead", lambda: sf.Lead.describe())
        return {str(f["name"]).lower(): f for f in desc.get("fields", [])}

    def _daemon_ready(self) -> bool:
        """Every written field visible and editable, every custom read field visible."""
        fields = self._lead_fields()
        written = all(fields.get(self.fmap.written[k].lower(), {}).get("updateable") for k in CUSTOM_FIELDS)
        return written and all(f.lower() in fields for f in self._custom_reads())

    def _custom_reads(self) -> list[str]:
        return list(dict.fromkeys(f for f in (*self.fmap.source.values(), *self.fmap.text, *self.fmap.routing)
                                  if f.lower().endswith("__c")))

    def _plan(self, options: SetupOptions | None, *, full: bool, created: list[str]) -> Plan:
        api = OrgApi(lambda: self.sf, lambda: metadata_api(self.sf), self._call, self._query)

        def create(keys: list[str]) -> None:
            created.extend(self._create_field_batch(keys))

        specs = {k: CUSTOM_FIELDS[k] for k in CUSTOM_FIELDS}
        return plan_setup(api, dict(self.fmap.written), self._custom_reads(), specs, create, options,
                          full=full, visible=set(self._lead_fields()))

    def _create_field_batch(self, keys: list[str]) -> list[str]:
        """Create these fields (≤ 10); a field created meanwhile by someone else is what we wanted."""
        try:
            self._call("createMetadata", partial(self._create_fields, keys))
        except CRMError as err:
            if err.code == "DUPLICATE_DEVELOPER_NAME":
                return []
            if err.kind is Kind.CONFIG or err.code in ("INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY"):
                raise CRMError(
                    "the integration user may not create fields: give it the 'Customize Application' and "
                    "'Modify Metadata Through Metadata API Functions' permissions, or create these Lead "
                    f"fields by hand: {', '.join(self.fmap.written[k] for k in keys)}",
                    crm=self.crm, operation="ensure_fields", rule=err.rule, status=err.status, code=err.code,
                ) from err
            raise
        return [self.fmap.written[k] for k in keys]

    def _create_fields(self, keys: list[str]) -> None:
        md = metadata_api(self.sf)
        comps = []
        for k in keys:
            ftype, extra, label = CUSTOM_FIELDS[k]
            comps.append(md.CustomField(fullName=f"Lead.{self.fmap.written[k]}", label=label,
                                        type=md.FieldType(ftype), **extra))
        md.CustomField.create(comps)

    def list_reps(self) -> list[Rep]:
        """Active standard users (a large org has tens of thousands of portal and community users).

        ``'Queue'``: the sandbox's stand-in for a lead queue, which it models as a user; no real
        user has that type (a real org's queues are Groups, ``00G…``, named in the routing file).
        """
        rows = self._query("SELECT Id, Name, FirstName, LastName, Email, IsActive, UserType FROM User "
                           "WHERE IsActive = true AND UserType IN ('Standard', 'Queue')")
        return [m.rep_from_user(r) for r in rows]

    def iter_changed_leads(self, since: datetime | None, *, overlap: bool = True,
                           unreadable: Callable[[Unreadable], None] | None = None) -> Iterator[Lead]:
        """Leads modified since ``since`` − lookback (``overlap=False``: no lookback), ascending.

        Through ``queryAll``: leads deleted (or merged away) since then come as ``Lead.deleted``.
        """
        select = ", ".join(self.fmap.select_fields())
        start = query_start(since, self.settings.lookback_seconds if overlap else 0)
        if start is None:
            soql = format_soql("SELECT {:literal} FROM Lead ORDER BY SystemModstamp ASC, Id ASC", select)
        else:
            soql = format_soql("SELECT {:literal} FROM Lead WHERE SystemModstamp >= {} "
                               "ORDER BY SystemModstamp ASC, Id ASC", select, start)
        yield from self._leads(self._query(soql, include_deleted=True), unreadable)

    def lead_span(self) -> LeadSpan:
        """One aggregate query: ``COUNT(Id)``, ``MIN``/``MAX(CreatedDate)`` of the org's leads."""
        rows = list(self._query("SELECT COUNT(Id) n, MIN(CreatedDate) lo, MAX(CreatedDate) hi FROM Lead"))
        row = rows[0] if rows else {}
        return LeadSpan(int(row.get("n") or 0), to_datetime(row.get("lo")), to_datetime(row.get("hi")))

    def iter_created_leads(self, start: datetime, end: datetime, *,
                           unreadable: Callable[[Unreadable], None] | None = None) -> Iterator[Lead]:
        """Leads created in ``[start, end)`` through a Bulk API 2.0 query: a handful of calls per
        chunk (create, poll, a page per 10,000 rows), streamed page by page."""
        select = ", ".join(self.fmap.select_fields())
        soql = format_soql("SELECT {:literal} FROM Lead WHERE CreatedDate >= {} AND CreatedDate < {}",
                           select, start, end)
        rows = query_rows(lambda: self.sf, soql, self._call, self.sleep)
        yield from self._leads(rows, unreadable)

    def get_leads(self, lead_ids: Iterable[str], *,
                  unreadable: Callable[[Unreadable], None] | None = None) -> list[Lead]:
        """These leads now (the parked-lead retry, ``leadpilot explain``), deleted ones included
        (``queryAll``): one query per 300 ids; unknown ids are left out."""
        ids = list(dict.fromkeys(lead_ids))
        select = ", ".join(self.fmap.select_fields())
        out: list[Lead] = []
        for i in range(0, len(ids), IN_CHUNK):
            soql = format_soql("SELECT {:literal} FROM Lead WHERE Id IN {}", select, ids[i : i + IN_CHUNK])
            out.extend(self._leads(self._query(soql, include_deleted=True), unreadable))
        return out

    def iter_removed(self, since: datetime | None) -> Iterator[Removal]:
        """Nothing, and no call: the ``queryAll`` pull already returns deleted and merged leads."""
        return iter(())

    def iter_owned_leads(self, owner_ids: Sequence[str]) -> Iterator[Lead]:
        """Unconverted leads of these owners, one query (paged) per 300 owners."""
        select = ", ".join(self.fmap.select_fields())
        ids = list(dict.fromkeys(owner_ids))
        for i in range(0, len(ids), IN_CHUNK):
            soql = format_soql("SELECT {:literal} FROM Lead WHERE OwnerId IN {} AND IsConverted = false "
                               "ORDER BY SystemModstamp ASC, Id ASC", select, ids[i : i + IN_CHUNK])
            yield from self._leads(self._query(soql))

    def inactive_owners(self) -> set[str]:
        """Deactivated users (Salesforce never deletes a user; it deactivates it)."""
        return {str(r["Id"]) for r in self._query("SELECT Id FROM User WHERE IsActive = false")}

    def iter_history(self, until: datetime | None = None, label: str | None = None) -> Iterator[LabelledLead]:
        """Past leads with a known outcome; the rule is ``mapping.label_lead``.

        ``label``: "converted" (default; converted → 1) or "won" (its opportunity closed won → 1).
        """
        label = label or "converted"
        if label not in ("converted", "won"):
            raise ValueError(f"label must be 'converted' or 'won', not {label!r}")
        until = until or self.now()
        select = ", ".join([*self.fmap.select_fields(), "ConvertedDate"])
        soql = format_soql("SELECT {:literal} FROM Lead WHERE CreatedDate < {} ORDER BY CreatedDate ASC",
                           select, until)
        pending: list[Lead] = []
        for lead in self._leads(self._query(soql)):
            if label == "won" and lead.raw.get("IsConverted") and lead.raw.get("ConvertedOpportunityId"):
                pending.append(lead)
                if len(pending) >= IN_CHUNK:
                    yield from self._label_with_opps(pending, until)
                    pending = []
                continue
            labelled = m.label_lead(lead, None, label=label, until=until, stale_after=self.stale_after)
            if labelled is not None:
                yield labelled
        if pending:
            yield from self._label_with_opps(pending, until)

    def _opportunities(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        soql = format_soql("SELECT Id, IsClosed, IsWon, Amount, CloseDate, OwnerId FROM Opportunity "
                           "WHERE Id IN {}", ids)
        return {r["Id"]: r for r in self._query(soql)}

    def _label_with_opps(self, leads: list[Lead], until: datetime) -> Iterator[LabelledLead]:
        opps = self._opportunities([str(lead.raw["ConvertedOpportunityId"]) for lead in leads])
        for lead in leads:
            opp = opps.get(str(lead.raw["ConvertedOpportunityId"]))
            labelled = m.label_lead(lead, opp, label="won", until=until, stale_after=self.stale_after)
            if labelled is not None:
                yield labelled

    def iter_outcomes(self, since: datetime | None) -> Iterator[Outcome]:
        """Opportunities closed (won or lost) since ``since``, each with the lead converted into it."""
        start = query_start(since, self.settings.lookback_seconds)
        base = "SELECT Id, IsClosed, IsWon, Amount, CloseDate, OwnerId, SystemModstamp FROM Opportunity WHERE IsClosed = true"
        soql = (format_soql(base + " AND SystemModstamp >= {} ORDER BY SystemModstamp ASC", start) if start
                else base + " ORDER BY SystemModstamp ASC")
        batch: dict[str, dict[str, Any]] = {}
        for opp in self._query(soql):
            batch[opp["Id"]] = opp
            if len(batch) >= IN_CHUNK:
                yield from self._outcomes_for(batch)
                batch = {}
        if batch:
            yield from self._outcomes_for(batch)

    def _outcomes_for(self, opps: dict[str, dict[str, Any]]) -> Iterator[Outcome]:
        soql = format_soql("SELECT Id, OwnerId, ConvertedOpportunityId FROM Lead WHERE ConvertedOpportunityId IN {}",
                           list(opps))
        for lead in self._query(soql):
            outcome = m.outcome_from(lead, opps[lead["ConvertedOpportunityId"]])
            if outcome is not None:
                yield outcome

    def get_owners(self, lead_ids: Iterable[str]) -> dict[str, str | None]:
        ids = list(dict.fromkeys(lead_ids))
        out: dict[str, str | None] = {}
        for i in range(0, len(ids), IN_CHUNK):
            soql = format_soql("SELECT Id, OwnerId FROM Lead WHERE Id IN {}", ids[i : i + IN_CHUNK])
            out.update({r["Id"]: r.get("OwnerId") for r in self._query(soql)})
        return out

    def iter_new_leads(self, since: datetime) -> Iterator[Lead]:
        """Leads created at or after ``since``, oldest first: the fast pass's one cheap query
        (an indexed ``CreatedDate`` filter; nothing new costs one call and returns no rows)."""
        select = ", ".join(self.fmap.select_fields())
        soql = format_soql("SELECT {:literal} FROM Lead WHERE CreatedDate >= {} ORDER BY CreatedDate ASC, Id ASC",
                           select, since)
        yield from self._leads(self._query(soql))

    # One aggregate query answers for every owner.
    workload_per_owner = False

    def open_lead_counts(self, owner_ids: Sequence[str]) -> dict[str, int]:
        """Open, unconverted leads each of ``owner_ids`` holds in the CRM (absent: none), in one
        aggregate query: ``SELECT OwnerId, COUNT(Id) … GROUP BY OwnerId``."""
        closed = list(m.DISQUALIFIED_STATUSES) + ["Closed - Converted"]
        soql = format_soql("SELECT OwnerId, COUNT(Id) n FROM Lead WHERE IsConverted = false AND Status NOT IN {} "
                           "GROUP BY OwnerId", closed)
        wanted = set(owner_ids)
        out: dict[str, int] = {}
        for row in self._query(soql):
            owner = row.get("OwnerId")
            if owner and owner in wanted:
                out[str(owner)] = int(row.get("n") or 0)
        return out

    def write(self, updates: Sequence[LeadUpdate]) -> WriteReport:
        """Collections of 200 (``allOrNone=false``); Bulk 2.0 above ``bulk_threshold`` updates.

        On a fault that stops the write (e.g. ``StopCycle``) the raised error carries ``.report``.
        """
        return metered_write(updates, self._send_collection, COLLECTION_SIZE, meter=self.meter,
                             retrier=self.retrier, big_send=self._send_bulk,
                             big_threshold=self.settings.bulk_threshold)

    def _send_collection(self, batch: list[LeadUpdate]) -> list[WriteResult]:
        body = {"allOrNone": False, "records": [m.collection_record(u, self.fmap, self.max_reasons) for u in batch]}
        saved = self._call("write", lambda: self.sf.restful("composite/sobjects", method="PATCH", json=body)) or []
        results = []
        for u, r in zip(batch, saved, strict=False):
            if r.get("success"):
                results.append(WriteResult(u.lead_id, True))
                continue
            err = (r.get("errors") or [{}])[0]
            code = str(err.get("statusCode") or "UNKNOWN_EXCEPTION")
            results.append(WriteResult(u.lead_id, False, code, str(err.get("message") or code),
                                       transient=SALESFORCE.worth_resending(code)))
        return results

    def _send_bulk(self, batch: list[LeadUpdate]) -> list[WriteResult]:
        columns = ["Id", *dict.fromkeys(k for u in batch for k in m.update_values(u, self.fmap, self.max_reasons))]
        rows = [m.bulk_row(u, self.fmap, columns, self.max_reasons) for u in batch]
        return ingest_update(lambda: self.sf, rows, columns, self._call, self.sleep)

    def api_usage(self) -> dict[str, int]:
        return self.meter.snapshot()

