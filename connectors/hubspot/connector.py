"""The HubSpot connector (hubspot-api-client): windowed search pulls, batch updates, deal outcomes.

Call floor for N changed contacts: ⌈N/200⌉ search pages + ⌈N/100⌉ batch updates.

Removed contacts: search never returns archived ones, so ``iter_removed`` lists the archived
contacts (⌈A/100⌉ calls, A = contacts in the recycle bin, which HubSpot keeps 90 days); the
cycle asks only while some assignment is open. Merges come with the survivor's change
(``hs_merged_object_ids``) at no extra call.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.batching import metered_write
from connectors.errors import CRMError, Kind, Rule
from connectors.hubspot import mapping as m
from connectors.hubspot.client import BurstPacer, HubSpotApis, counted, search_all
from connectors.hubspot.errors import HUBSPOT, RULES, from_hubspot, token_rejected_message
from connectors.hubspot.settings import HubSpotPropertyNames, HubSpotSettings
from connectors.preflight import CheckItem
from connectors.records import (
    OPTIONAL_WRITTEN_FIELDS,
    WRITTEN_FIELDS,
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
from connectors.usage import UsageMeter
from connectors.values import MappingError, epoch_ms, to_datetime
from connectors.window import Dedup, query_start

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # batch/update and batch/read maximum
ASSOC_BATCH = 1000  # v4 associations batch read maximum
GROUP = "leadpilot"


class HubSpotConnector:
    """``Connector`` for HubSpot contacts (or the leads object). Built by ``connectors.hubspot.connect``.

    ``token_provider`` returns the current access token; on a 401 it is asked again and the
    clients are rebuilt when the token changed (a rotated ``*_FILE`` secret). A private-app
    token that stays rejected is a configuration error.
    """

    crm = "hubspot"

    def __init__(
        self,
        settings: HubSpotSettings,
        props: HubSpotPropertyNames,
        *,
        token_provider: Callable[[], str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        policy: RetryPolicy | None = None,
        stale_days: int = 90,
        monotonic: Callable[[], float] = time.monotonic,
        env_prefix: str = "LEADPILOT_HUBSPOT__",
        routing_fields: Sequence[str] = (),
    ) -> None:
        if token_provider is None:
            if settings.access_token is None:
                raise ValueError("HubSpot access token is not set: LEADPILOT_HUBSPOT__ACCESS_TOKEN (or _FILE)")
            token = settings.access_token.get_secret_value()
            token_provider = lambda: token  # noqa: E731
        self.settings, self.now, self.sleep = settings, now, sleep
        self.env_prefix = env_prefix
        self.pmap = m.PropertyMap.build(settings.object_type, settings.source_properties, settings.text_properties,
                                        props.model_dump(), tuple(routing_fields))
        self.meter = UsageMeter()
        self.stale_after = timedelta(days=stale_days)
        self._token_provider = token_provider
        self.apis = HubSpotApis(settings, token_provider())
        self.pacer = BurstPacer(sleep, monotonic)
        self.retrier = Retrier(policy or RetryPolicy(), lambda e, op: from_hubspot(e, op, self.now()), sleep,
                               rng or random.Random(0), refresh=self._refresh)

    def _refresh(self) -> None:
        if not self.apis.set_token(self._token_provider()):
            raise CRMError(token_rejected_message(self.env_prefix), crm=self.crm, operation="access token",
                           rule=RULES["TOKEN_REJECTED"], status=401, code="INVALID_AUTHENTICATION")

    def _call(self, kind: str, operation: str, fn: Callable[[], Any]) -> Any:
        return self.retrier.call(operation, lambda: counted(self.meter, kind, fn, self.pacer))

    def _op(self, api: str, method: str, *args: Any, **kwargs: Any) -> Callable[[], Any]:
        """A ``*_with_http_info`` call that looks its API object up when run (a refresh rebuilds them),
        with the connect and read deadlines of the settings."""
        return lambda: getattr(self.apis.get(api), f"{method}_with_http_info")(
            *args, _request_timeout=self.apis.timeout, **kwargs)

    def _search(self, api: str, stamp: str, start_ms: int | None, properties: list[str],
                extra: list[dict[str, Any]] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        def one(body: dict[str, Any]) -> Callable[[], Any]:
            return self._op(api, "do_search", public_object_search_request=body)

        return search_all(lambda op, fn: self._call("read", op, fn), one, stamp, start_ms, properties, extra)

    def _leads(self, objects: Iterable[tuple[int, dict[str, Any]]],
               unreadable: Callable[[Unreadable], None] | None = None) -> Iterator[Lead]:
        dedup = Dedup()
        for ms, obj in objects:
            if not dedup.fresh(str(obj.get("id")), ms):
                continue
            try:
                yield m.lead_from_object(obj, self.pmap)
            except MappingError as exc:
                if unreadable is None:
                    log.warning("skipping a HubSpot object: %s", exc)
                else:
                    unreadable(Unreadable(m.object_id(obj), str(exc)))

    # ------------------------------------------------------------------ Connector
    def check(self) -> CheckResult:
        problems: list[str] = []
        try:
            self._call("read", "owners", self._op("owners", "get_page", limit=1))
            names = self._property_names()
        except CRMError as err:
            return CheckResult(False, self.crm, None, self.meter.budget, (str(err),))
        missing = [self.pmap.written[k] for k in WRITTEN_FIELDS if self.pmap.written[k] not in names]
        if missing:
            problems.append(f"properties missing on {self.settings.object_type}: {', '.join(missing)} "
                            "(run `leadpilot init-crm`)")
        frac = self.meter.budget.fraction_left
        if frac is not None and frac < 0.1:
            problems.append(f"only {self.meter.budget.remaining} of {self.meter.budget.limit} daily API calls left")
        return CheckResult(not problems, self.crm, None, self.meter.budget, tuple(problems))

    def _property_names(self) -> set[str]:
        return set(self._properties())

    def _properties(self) -> dict[str, dict[str, Any]]:
        """The object's property definitions by name (one call)."""
        page = self._call("meta", "list properties", self._op("properties", "get_all", self.settings.object_type))
        return {str(p.get("name")): p for p in page.get("results") or []}

    def ensure_fields(self, *, dry_run: bool = False) -> list[str]:
        """Create the ``leadpilot`` property group and the missing properties (with descriptions,
        the grade's options A-D, Yes/No for the flag); return what was created — or, with
        ``dry_run``, what would be (nothing is written then). Existing properties are left as they are.
        """
        obj = self.settings.object_type
        existing = self._property_names()
        todo = [k for k in (*WRITTEN_FIELDS, *OPTIONAL_WRITTEN_FIELDS)
                if k in self.pmap.written and self.pmap.written[k] not in existing]
        if not todo:
            return []
        created: list[str] = []
        if dry_run:
            if not self._group_exists():
                created.append(f"property group {GROUP}")
            return created + [self.pmap.written[k] for k in todo]
        if self._create_ignoring_conflict("create property group", self._op(
                "groups", "create", obj, property_group_create={"name": GROUP, "label": "LeadPilot"})):
            created.append(f"property group {GROUP}")
        for k in todo:
            body = m.property_definition(k, self.pmap.written[k], GROUP)
            if self._create_ignoring_conflict(f"create property {body['name']}",
                                              self._op("properties", "create", obj, property_create=body)):
                created.append(self.pmap.written[k])
        return created

    def init_crm(self, rep_ids: Sequence[str] = (), *, dry_run: bool = False) -> list[str]:
        """``leadpilot init-crm`` on HubSpot: the changes made (or, with ``dry_run``, those it would
        make) as lines an admin reads; empty when everything is in place.

        HubSpot has no per-field permission to grant: a property is visible to every user who may
        see the record, so ``rep_ids`` needs nothing here. Putting the properties on the record
        sidebar is a portal setting with no public API (docs/hubspot.md, step 4).
        """
        obj = self.settings.object_type
        verb = "would create" if dry_run else "created"
        lines = [f"{verb} {what}" if what.startswith("property group") else f"{verb} property {what} on {obj}"
                 for what in self.ensure_fields(dry_run=dry_run)]
        for name, patch in self._incomplete_definitions():
            if not dry_run:
                self._call("meta", f"update property {name}", self._op("properties", "update", obj, name,
                                                                       property_update=patch))
            lines.append(f"{'would complete' if dry_run else 'completed'} property {name} on {obj}: "
                         f"{' and '.join(sorted(patch))}")
        return lines

    def _incomplete_definitions(self) -> list[tuple[str, dict[str, Any]]]:
        """leadpilot's properties that exist without what ``init-crm`` now gives them (created by an
        older leadpilot or by hand): a missing description, the grade's or the flag's missing
        options. Types and groups are left alone: changing them could break what the admin built."""
        defs = self._properties()
        out: list[tuple[str, dict[str, Any]]] = []
        for k in WRITTEN_FIELDS:
            name = self.pmap.written[k]
            have = defs.get(name)
            if have is None:
                continue
            want = m.property_definition(k, name, GROUP)
            patch: dict[str, Any] = {}
            if not str(have.get("description") or "").strip():
                patch["description"] = want["description"]
            if "options" in want and not have.get("options") and have.get("type") == want["type"]:
                patch["options"] = want["options"]
            if patch:
                out.append((name, patch))
        return out

    def _group_exists(self) -> bool:
        try:
            self._call("meta", "read property group", self._op("groups", "get_by_name", self.settings.object_type,
                                                                GROUP))
            return True
        except CRMError as err:
            if err.status == 404:
                return False
            raise

    def _create_ignoring_conflict(self, op: str, fn: Callable[[], Any]) -> bool:
        try:
            self._call("meta", op, fn)
            return True
        except CRMError as err:
            if err.status == 409:  # exists already (created meanwhile): that is what we wanted
                return False
            if err.status == 403 or err.kind is Kind.CONFIG:
                scope = f"crm.schemas.{self.settings.object_type}.write"
                raise CRMError(f"the access token may not create properties: add the {scope} scope to the "
                               "Service Key (or the legacy private app), or create the leadpilot properties by "
                               "hand (docs/hubspot.md)", crm=self.crm, operation=op,
                               rule=Rule(err.rule.action, err.rule.kind), status=err.status, code=err.code) from err
            raise

    def preflight(self, *, user_ids: Sequence[str] = (), writes_reason: bool = False) -> list[CheckItem]:
        """The live checklist for ``leadpilot check`` (``connectors.hubspot.preflight``)."""
        from connectors.hubspot.preflight import run_preflight

        return run_preflight(self, user_ids, writes_reason=writes_reason)

    def list_reps(self) -> list[Rep]:
        reps: list[Rep] = []
        after: str | None = None
        while True:
            kw: dict[str, Any] = {"limit": 500, **({"after": after} if after else {})}
            page = self._call("read", "owners", self._op("owners", "get_page", **kw))
            reps += [m.rep_from_owner(o) for o in page.get("results") or []]
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not nxt or nxt == after:
                return reps
            after = str(nxt)

    def iter_changed_leads(self, since: datetime | None, *, overlap: bool = True,
                           unreadable: Callable[[Unreadable], None] | None = None) -> Iterator[Lead]:
        """Leads modified since ``since`` − lookback (``overlap=False``: no lookback), ascending."""
        start = query_start(since, self.settings.lookback_seconds if overlap else 0)
        objs = self._search("search", self.pmap.modified, epoch_ms(start) if start else None, self.pmap.properties())
        yield from self._leads(objs, unreadable)

    def get_leads(self, lead_ids: Iterable[str], *,
                  unreadable: Callable[[Unreadable], None] | None = None) -> list[Lead]:
        """These leads now (the parked-lead retry, ``leadpilot explain``), one batch read per 100 ids;
        archived or merged-away ones are left out."""
        ids = list(dict.fromkeys(lead_ids))
        out: list[Lead] = []
        for i in range(0, len(ids), BATCH_SIZE):
            body = {"inputs": [{"id": x} for x in ids[i : i + BATCH_SIZE]], "properties": self.pmap.properties()}
            page = self._call("read", "read leads", self._op("batch", "read",
                                                             batch_read_input_simple_public_object_id=body))
            out.extend(self._leads(((0, o) for o in page.get("results") or []), unreadable))
        return out

    def iter_removed(self, since: datetime | None) -> Iterator[Removal]:
        """Contacts archived since ``since`` − lookback (all of them without ``since``), 100 a page."""
        start = query_start(since, self.settings.lookback_seconds)
        after: str | None = None
        while True:
            kw: dict[str, Any] = {"limit": BATCH_SIZE, "archived": True, "properties": ["hs_object_id"],
                                  **({"after": after} if after else {})}
            page = self._call("read", "archived", self._op("basic", "get_page", **kw))
            for obj in page.get("results") or []:
                at = to_datetime(obj.get("archived_at") or obj.get("archivedAt"))
                if start is None or at is None or at >= start:
                    yield Removal(str(obj.get("id")), at)
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not nxt or nxt == after:
                return
            after = str(nxt)

    def iter_owned_leads(self, owner_ids: Sequence[str]) -> Iterator[Lead]:
        """Contacts of these owners (searched by owner, 100 owners a query), minus converted ones."""
        ids = list(dict.fromkeys(owner_ids))
        for i in range(0, len(ids), BATCH_SIZE):
            owned = [{"propertyName": self.pmap.written["owner"], "operator": "IN", "values": ids[i : i + BATCH_SIZE]}]
            objs = self._search("search", self.pmap.modified, None, self.pmap.properties(), owned)
            yield from (lead for lead in self._leads(objs) if lead.stage != "converted")

    def inactive_owners(self) -> set[str]:
        """Archived owners (deactivated or removed users), 500 a page."""
        out: set[str] = set()
        after: str | None = None
        while True:
            kw: dict[str, Any] = {"limit": 500, "archived": True, **({"after": after} if after else {})}
            page = self._call("read", "owners", self._op("owners", "get_page", **kw))
            out.update(str(o.get("id")) for o in page.get("results") or [] if o.get("id") is not None)
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not nxt or nxt == after:
                return out
            after = str(nxt)

    def iter_history(self, until: datetime | None = None, label: str | None = None) -> Iterator[LabelledLead]:
        """Past contacts with a known outcome (rule: ``connectors.hubspot.mapping.label_lead``)."""
        label = label or "converted"
        if label not in ("converted", "won"):
            raise ValueError(f"label must be 'converted' or 'won', not {label!r}")
        until = until or self.now()
        before = [{"propertyName": "createdate", "operator": "LT", "value": str(epoch_ms(until))}]
        objs = self._search("search", "createdate", None, self.pmap.properties(), before)
        leads = list(self._leads(objs))
        deals = self._deals_for([lead.id for lead in leads]) if label == "won" else {}
        for lead in leads:
            labelled = m.label_lead(lead, deals.get(lead.id), label=label, until=until, stale_after=self.stale_after)
            if labelled is not None:
                yield labelled

    def _associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for i in range(0, len(ids), ASSOC_BATCH):
            body = {"inputs": [{"id": x} for x in ids[i : i + ASSOC_BATCH]]}
            page = self._call("read", "associations", self._op(
                "associations", "get_page", from_type, to_type, batch_input_public_fetch_associations_batch_request=body))
            for res in page.get("results") or []:
                src = str((res.get("_from") or res.get("from") or {}).get("id"))
                out.setdefault(src, []).extend(str(t.get("to_object_id") or t.get("toObjectId")) for t in res.get("to") or [])
        return out

    def _deals_for(self, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
        links = self._associations(self.settings.object_type, "deals", lead_ids)
        deal_ids = sorted({d for ds in links.values() for d in ds})
        deals: dict[str, dict[str, Any]] = {}
        for i in range(0, len(deal_ids), BATCH_SIZE):
            body = {"inputs": [{"id": d} for d in deal_ids[i : i + BATCH_SIZE]],
                    "properties": ["dealstage", "hs_is_closed_won", "hs_is_closed", "closedate", "amount",
                                   "hubspot_owner_id"]}
            page = self._call("read", "read deals", self._op(
                "deals.batch", "read", batch_read_input_simple_public_object_id=body))
            deals.update({str(d.get("id")): d for d in page.get("results") or []})
        return {lead: deals[ds[0]] for lead, ds in links.items() if ds and ds[0] in deals}

    def iter_outcomes(self, since: datetime | None) -> Iterator[Outcome]:
        """Deals closed since ``since`` with the contacts they are associated with (v4 batch read)."""
        start = query_start(since, self.settings.lookback_seconds)
        closed = [{"propertyName": "dealstage", "operator": "IN", "values": list(m.CLOSED_STAGES)}]
        props = ["dealstage", "hs_is_closed_won", "hs_is_closed", "closedate", "amount", "hubspot_owner_id",
                 "hs_lastmodifieddate"]
        dedup = Dedup()
        batch: dict[str, dict[str, Any]] = {}
        for ms, deal in self._search("deals.search", "hs_lastmodifieddate", epoch_ms(start) if start else None,
                                     props, closed):
            if dedup.fresh(str(deal.get("id")), ms):
                batch[str(deal.get("id"))] = deal
            if len(batch) >= ASSOC_BATCH:
                yield from self._outcomes_for(batch)
                batch = {}
        if batch:
            yield from self._outcomes_for(batch)

    def _outcomes_for(self, deals: dict[str, dict[str, Any]]) -> Iterator[Outcome]:
        links = self._associations("deals", self.settings.object_type, list(deals))
        for deal_id, lead_ids in links.items():
            for lead_id in lead_ids:
                outcome = m.outcome_from_deal(deals[deal_id], lead_id)
                if outcome is not None:
                    yield outcome

    def get_owners(self, lead_ids: Iterable[str]) -> dict[str, str | None]:
        ids = list(dict.fromkeys(lead_ids))
        owner = self.pmap.written["owner"]
        out: dict[str, str | None] = {}
        for i in range(0, len(ids), BATCH_SIZE):
            body = {"inputs": [{"id": x} for x in ids[i : i + BATCH_SIZE]], "properties": [owner]}
            page = self._call("read", "read owners", self._op("batch", "read",
                                                              batch_read_input_simple_public_object_id=body))
            out.update({str(o.get("id")): (o.get("properties") or {}).get(owner) for o in page.get("results") or []})
        return out

    def iter_new_leads(self, since: datetime) -> Iterator[Lead]:
        """Leads created at or after ``since``, oldest first: the fast pass's one cheap search
        (nothing new costs one call and returns no results)."""
        yield from self._leads(self._search("search", "createdate", epoch_ms(since), self.pmap.properties()))

    def lead_span(self) -> LeadSpan:
        """Two one-result searches sorted by ``createdate`` (HubSpot has no MIN/MAX): the
        ``total`` and the first creation time, then the last."""
        ends: list[datetime | None] = []
        total = 0
        for direction in ("ASCENDING", "DESCENDING"):
            body = {"filterGroups": [], "sorts": [{"propertyName": "createdate", "direction": direction}],
                    "properties": ["createdate"], "limit": 1}
            page = self._call("read", "lead span", self._op("search", "do_search", public_object_search_request=body))
            total = int(page.get("total") or 0)
            first = (page.get("results") or [{}])[0]
            ends.append(to_datetime((first.get("properties") or {}).get("createdate")))
        return LeadSpan(total, ends[0], ends[1])

    def iter_created_leads(self, start: datetime, end: datetime, *,
                           unreadable: Callable[[Unreadable], None] | None = None) -> Iterator[Lead]:
        """Contacts created in ``[start, end)``: the windowed search (re-windowed at its
        10,000-result cap) on ``createdate``."""
        before = [{"propertyName": "createdate", "operator": "LT", "value": str(epoch_ms(end))}]
        objs = self._search("search", "createdate", epoch_ms(start), self.pmap.properties(), before)
        yield from self._leads(objs, unreadable)

    # HubSpot search cannot group: one search (limit 1, its ``total``) per owner.
    workload_per_owner = True

    def open_lead_counts(self, owner_ids: Sequence[str]) -> dict[str, int]:
        """Open leads each of ``owner_ids`` holds (lifecycle stage neither past "lead" nor
        "other", the disqualified stage): one search per owner reading only the result ``total``.
        The lead status property is not filtered on: portals need not have ``hs_lead_status``."""
        owner = self.pmap.written["owner"]
        closed_stages = [*m.CONVERTED_STAGES, "other"]
        out: dict[str, int] = {}
        for oid in dict.fromkeys(owner_ids):
            body = {"filterGroups": [{"filters": [
                {"propertyName": owner, "operator": "EQ", "value": str(oid)},
                {"propertyName": "lifecyclestage", "operator": "NOT_IN", "values": closed_stages},
            ]}], "properties": ["hs_object_id"], "limit": 1}
            page = self._call("read", "workload", self._op("search", "do_search", public_object_search_request=body))
            out[str(oid)] = int(page.get("total") or 0)
        return out

    def write(self, updates: Sequence[LeadUpdate]) -> WriteReport:
        """``batch/update`` of 100; per-input errors of a 207 are reported per lead."""
        return metered_write(updates, self._send, BATCH_SIZE, meter=self.meter, retrier=self.retrier)

    def _send(self, batch: list[LeadUpdate]) -> list[WriteResult]:
        body = {"inputs": [m.update_input(u, self.pmap) for u in batch]}
        page = self._call("write", "batch update", self._op(
            "batch", "update", batch_input_simple_public_object_batch_input=body))
        ok = {str(o.get("id")) for o in page.get("results") or []}
        failed: dict[str, WriteResult] = {}
        for err in page.get("errors") or []:
            code = str(err.get("category") or "ERROR")
            transient = HUBSPOT.worth_resending(code)
            for rid in ((err.get("context") or {}).get("ids") or []):
                failed[str(rid)] = WriteResult(str(rid), False, code, str(err.get("message") or code), transient)
        return [WriteResult(u.lead_id, True) if u.lead_id in ok and u.lead_id not in failed
                else failed.get(u.lead_id, WriteResult(u.lead_id, False, "MISSING_RESULT",
                                                       "HubSpot returned no result for this record", True))
                for u in batch]

    def api_usage(self) -> dict[str, int]:
        return self.meter.snapshot()
