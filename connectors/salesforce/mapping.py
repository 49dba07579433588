"""Salesforce records ⇄ leadpilot values. Pure functions, no I/O.

The org's own field names come from settings (``salesforce.source_fields`` maps a Lead
attribute to a field, e.g. ``{"industry": "Industry__c"}``; ``salesforce.text_fields``
lists the fields joined into the lead card; ``fields`` names what leadpilot writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.records import (
    LEAD_ATTRIBUTES,
    NUMERIC_ATTRIBUTES,
    ROUTING_REASON_CHARS,
    WRITTEN_FIELDS,
    LabelledLead,
    Lead,
    LeadUpdate,
    Outcome,
    Rep,
)
from connectors.values import (
    MappingError,
    iso_utc,
    require_datetime,
    text_card,
    to_bool,
    to_datetime,
    to_number,
    to_text,
)

DEFAULT_SOURCE_FIELDS: dict[str, str] = {
    "title": "Title",
    "company": "Company",
    "industry": "Industry",
    "employees": "NumberOfEmployees",
    "revenue": "AnnualRevenue",
    "country": "Country",
    "source": "LeadSource",
    "status": "Status",
    "email": "Email",
    # not a scoring attribute: read so that routing territories and rules can name states/provinces
    # (``lead_attributes`` reads it from the record); an org keeping it elsewhere maps it here
    "state": "State",
}
# Lead statuses that mean "not an opportunity" for training labels (standard picklist values)
DISQUALIFIED_STATUSES = ("Unqualified", "Closed - Not Converted", "Disqualified", "Junk")


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Which Salesforce field holds what: read attributes, lead-card text, written fields."""

    source: Mapping[str, str]
    text: tuple[str, ...]
    written: Mapping[str, str]  # LeadUpdate attribute → field (score, grade, …, owner)
    # other fields the routing file's predicates name (``fields = { Region__c = [...] }``): pulled
    # so that territories and rules can read them from the record
    routing: tuple[str, ...] = ()

    @classmethod
    def build(cls, source_overrides: Mapping[str, str], text: tuple[str, ...], written: Mapping[str, str],
              routing: tuple[str, ...] = ()) -> FieldMap:
        unknown = sorted(set(source_overrides) - set(DEFAULT_SOURCE_FIELDS))
        if unknown:
            raise ValueError(
                f"salesforce.source_fields: unknown attribute(s) {unknown}; "
                f"valid keys are {sorted(DEFAULT_SOURCE_FIELDS)}"
            )
        return cls({**DEFAULT_SOURCE_FIELDS, **source_overrides}, tuple(text), dict(written), tuple(routing))

    def select_fields(self) -> list[str]:
        """Every field a lead query needs, each once, in a stable order."""
        names = ["Id", "CreatedDate", "SystemModstamp", "OwnerId", "IsConverted", "ConvertedOpportunityId",
                 "IsDeleted", "MasterRecordId", "LastActivityDate",
                 *self.source.values(), *self.text, *(self.written[k] for k in WRITTEN_FIELDS), *self.routing]
        return list(dict.fromkeys(names))


def record_id(rec: Mapping[str, Any]) -> str | None:
    """The record's Id, when it has one (for a record that otherwise cannot be mapped)."""
    return to_text(rec.get("Id"))


def lead_from_record(rec: Mapping[str, Any], fmap: FieldMap) -> Lead:
    """A ``Lead`` from one SOQL row; raises ``MappingError`` without ``Id``/``SystemModstamp``."""
    rid = to_text(rec.get("Id"))
    if rid is None:
        raise MappingError("Salesforce record without an Id")
    modified = require_datetime(rec.get("SystemModstamp") or rec.get("LastModifiedDate"), "SystemModstamp", rid)
    attrs: dict[str, Any] = {}
    for attr in (*LEAD_ATTRIBUTES, "email"):
        value = rec.get(fmap.source[attr])
        attrs[attr] = to_number(value) if attr in NUMERIC_ATTRIBUTES else to_text(value)
    written = {k: rec[fmap.written[k]] for k in WRITTEN_FIELDS if fmap.written[k] in rec}
    raw = {k: v for k, v in rec.items() if k != "attributes"}
    if fmap.source["state"] != "State" and to_text(rec.get(fmap.source["state"])) is not None:
        raw.setdefault("State", rec[fmap.source["state"]])  # where routing looks for the state
    return Lead(
        id=rid,
        created_at=to_datetime(rec.get("CreatedDate")),
        modified_at=modified,
        owner_id=to_text(rec.get("OwnerId")),
        text=text_card(rec, fmap.text),
        stage=lead_stage(rec, attrs["status"]),
        written=written,
        raw=raw,
        deleted=to_bool(rec.get("IsDeleted")) is True,
        merged_into=to_text(rec.get("MasterRecordId")),
        last_activity_at=end_of_day(to_datetime(rec.get("LastActivityDate"))),
        **attrs,
    )


def end_of_day(day: datetime | None) -> datetime | None:
    """``LastActivityDate`` is a date: its last instant, so that an activity logged the day a
    lead was assigned counts as after the assignment (a rep is never re-routed for a call made)."""
    return None if day is None else day + timedelta(days=1) - timedelta(microseconds=1)


def lead_stage(rec: Mapping[str, Any], status: str | None) -> str | None:
    """``converted`` (``IsConverted``), ``disqualified`` (a closed, unconverted status) or None."""
    if to_bool(rec.get("IsConverted")) is True:
        return "converted"
    return "disqualified" if status in DISQUALIFIED_STATUSES else None


def update_values(update: LeadUpdate, fmap: FieldMap, max_reasons: int = 32_000) -> dict[str, Any]:
    """The field values of one update (JSON types); only what the update sets."""
    out: dict[str, Any] = {}
    if update.score is not None:
        out[fmap.written["score"]] = int(update.score)
    if update.grade is not None:
        out[fmap.written["grade"]] = update.grade
    if update.opportunity is not None:
        out[fmap.written["opportunity"]] = bool(update.opportunity)
    if update.reasons is not None:
        out[fmap.written["reasons"]] = update.reasons[:max_reasons]
    if update.model_version is not None:
        out[fmap.written["model_version"]] = update.model_version
    if update.scored_at is not None:
        out[fmap.written["scored_at"]] = iso_utc(update.scored_at)
    if update.owner_id is not None:
        out[fmap.written["owner"]] = update.owner_id
    if update.routing_reason is not None and "routing_reason" in fmap.written:
        out[fmap.written["routing_reason"]] = update.routing_reason[:ROUTING_REASON_CHARS]
    return out


def collection_record(update: LeadUpdate, fmap: FieldMap, max_reasons: int = 32_000) -> dict[str, Any]:
    """One element of an sObject Collections ``records`` array."""
    return {"attributes": {"type": "Lead"}, "Id": update.lead_id, **update_values(update, fmap, max_reasons)}


def bulk_row(update: LeadUpdate, fmap: FieldMap, columns: list[str], max_reasons: int = 32_000) -> dict[str, str]:
    """One Bulk 2.0 CSV row over ``columns``. An empty cell leaves a field unchanged (Bulk 2.0 rule)."""
    values = update_values(update, fmap, max_reasons)
    row = {"Id": update.lead_id}
    for col in columns:
        if col == "Id":
            continue
        v = values.get(col)
        row[col] = "" if v is None else ("true" if v is True else "false" if v is False else str(v))
    return row


def rep_from_user(rec: Mapping[str, Any]) -> Rep:
    """A ``Rep`` from a User row (queues: a ``UserType`` of ``Queue`` or a Group id ``00G…``)."""
    rid = to_text(rec.get("Id"))
    if rid is None:
        raise MappingError("Salesforce User without an Id")
    name = to_text(rec.get("Name")) or " ".join(
        p for p in (to_text(rec.get("FirstName")), to_text(rec.get("LastName"))) if p
    ) or rid
    return Rep(
        id=rid,
        name=name,
        email=to_text(rec.get("Email")),
        active=to_bool(rec.get("IsActive")) is not False,
        is_queue=rid.startswith("00G") or (to_text(rec.get("UserType")) or "").lower() == "queue",
    )


def outcome_from(lead: Mapping[str, Any], opp: Mapping[str, Any]) -> Outcome | None:
    """The ``Outcome`` of a converted lead's opportunity; ``None`` while it is open."""
    if to_bool(opp.get("IsClosed")) is not True:
        return None
    lead_id, opp_id = to_text(lead.get("Id")), to_text(opp.get("Id"))
    closed = to_datetime(opp.get("CloseDate")) or to_datetime(opp.get("SystemModstamp"))
    if lead_id is None or opp_id is None or closed is None:
        return None
    return Outcome(
        lead_id=lead_id,
        opportunity_id=opp_id,
        won=to_bool(opp.get("IsWon")) is True,
        closed_at=closed,
        owner_id=to_text(opp.get("OwnerId")) or to_text(lead.get("OwnerId")),
        amount=to_number(opp.get("Amount")),
    )


def label_lead(
    lead: Lead,
    opp: Mapping[str, Any] | None,
    *,
    label: str,
    until: datetime,
    stale_after: timedelta,
) -> LabelledLead | None:
    """The training label of a past lead, or ``None`` while its outcome is unknown.

    ``label="converted"``: converted → 1; status disqualified, or unconverted and created more
    than ``stale_after`` before ``until`` → 0. ``label="won"``: converted and its opportunity
    closed won → 1; opportunity closed lost, disqualified or stale → 0; open opportunity → unknown.
    """
    raw = lead.raw
    stage = lead_stage(raw, lead.status)
    if stage == "converted":
        decided = to_datetime(raw.get("ConvertedDate")) or lead.modified_at
        if label == "converted":
            return LabelledLead(lead, True, decided)
        if opp is None or to_bool(opp.get("IsClosed")) is not True:
            return None
        return LabelledLead(lead, to_bool(opp.get("IsWon")) is True, to_datetime(opp.get("CloseDate")) or decided)
    if stage == "disqualified":
        return LabelledLead(lead, False, lead.modified_at)
    if lead.created_at is not None and lead.created_at <= until - stale_after:
        return LabelledLead(lead, False, lead.created_at + stale_after)
    return None
