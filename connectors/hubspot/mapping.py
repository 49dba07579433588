"""HubSpot objects ⇄ leadpilot values. Pure functions, no I/O.

HubSpot returns every property as a string (or null); timestamps come as ISO 8601 in
results and go as epoch milliseconds in search filters. Property names are overridable
in settings (``hubspot.source_properties``, ``hubspot.text_properties``,
``hubspot_properties``).
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
    epoch_ms,
    require_datetime,
    text_card,
    to_bool,
    to_datetime,
    to_number,
    to_text,
)

DEFAULT_SOURCE_PROPERTIES: dict[str, str] = {
    "title": "jobtitle",
    "company": "company",
    "industry": "industry",
    "employees": "numberofemployees",
    "revenue": "annualrevenue",
    "country": "country",
    "source": "hs_analytics_source",
    "status": "hs_lead_status",
    "email": "email",
    # not a scoring attribute: read so that routing territories and rules can name states/provinces
    # (``lead_attributes`` reads it from the record); a portal keeping it elsewhere maps it here
    "state": "state",
}
# contacts carry ``lastmodifieddate``; every other object ``hs_lastmodifieddate`` (crm-apis.md §3)
MODIFIED_PROPERTY = {"contacts": "lastmodifieddate", "leads": "hs_lastmodifieddate"}
# ids of the records merged into this one, ";"-separated (the merged-away records no longer exist)
MERGED_PROPERTY = "hs_merged_object_ids"
# when a rep last logged a sales activity on the contact (untouched-lead re-routing)
ACTIVITY_PROPERTY = {"contacts": "hs_last_sales_activity_timestamp"}
CONVERTED_STAGES = ("opportunity", "customer", "evangelist")  # lifecyclestage values past "lead"
DISQUALIFIED = ("UNQUALIFIED", "Closed - Not Converted", "Unqualified")
CLOSED_STAGES = ("closedwon", "closedlost")
# HubSpot property types of what leadpilot writes (name key → (type, fieldType, label))
PROPERTY_TYPES: dict[str, tuple[str, str, str]] = {
    "score": ("number", "number", "LeadPilot score"),
    "grade": ("enumeration", "select", "LeadPilot grade"),
    "opportunity": ("bool", "booleancheckbox", "LeadPilot opportunity"),
    "reasons": ("string", "textarea", "LeadPilot reasons"),
    "model_version": ("string", "text", "LeadPilot model version"),
    "scored_at": ("datetime", "date", "LeadPilot scored at"),
    "routing_reason": ("string", "text", "LeadPilot routing reason"),
}
# What a rep reads when hovering a property in the record sidebar (and an admin in Settings).
PROPERTY_DESCRIPTIONS: dict[str, str] = {
    "score": "How likely this lead is to convert, 0-100 (leadpilot's calibrated probability x 100). "
             "Written by leadpilot; edits are overwritten.",
    "grade": "The score's band: A (most likely to convert) to D. Written by leadpilot.",
    "opportunity": "Yes when leadpilot judges this lead worth working now (its score is above the "
                   "opportunity threshold). Written by leadpilot.",
    "reasons": "Why leadpilot scored this lead as it did: the strongest factors, most important first.",
    "model_version": "The leadpilot model that wrote the score (for audits and comparisons).",
    "scored_at": "When leadpilot last scored this lead.",
    "routing_reason": "Why leadpilot routed this lead to its owner (or left it queued): the rep chosen and why "
                      "each other rep was left out. Written only when routing reasons are turned on.",
}
GRADES = ("A", "B", "C", "D")


def property_definition(attribute: str, name: str, group: str) -> dict[str, Any]:
    """The ``POST /crm/v3/properties/{object}`` body for one of leadpilot's written properties:
    label, type, description, group, and the options of the grade (A-D) and the flag (Yes/No)."""
    ptype, field_type, label = PROPERTY_TYPES[attribute]
    body: dict[str, Any] = {"name": name, "label": label, "type": ptype, "fieldType": field_type,
                            "groupName": group, "description": PROPERTY_DESCRIPTIONS[attribute]}
    if ptype == "bool":
        body["options"] = [{"label": "Yes", "value": "true", "displayOrder": 0},
                           {"label": "No", "value": "false", "displayOrder": 1}]
    elif attribute == "grade":
        body["options"] = [{"label": g, "value": g, "displayOrder": i} for i, g in enumerate(GRADES)]
    return body


@dataclass(frozen=True, slots=True)
class PropertyMap:
    """Which HubSpot property holds what."""

    object_type: str
    source: Mapping[str, str]
    text: tuple[str, ...]
    written: Mapping[str, str]  # LeadUpdate attribute → property (score, …, owner)
    # other properties the routing file's predicates name (``fields = { region = [...] }``): pulled
    # so that territories and rules can read them from the record
    routing: tuple[str, ...] = ()

    @classmethod
    def build(cls, object_type: str, overrides: Mapping[str, str], text: tuple[str, ...],
              written: Mapping[str, str], routing: tuple[str, ...] = ()) -> PropertyMap:
        unknown = sorted(set(overrides) - set(DEFAULT_SOURCE_PROPERTIES))
        if unknown:
            raise ValueError(
                f"hubspot.source_properties: unknown attribute(s) {unknown}; "
                f"valid keys are {sorted(DEFAULT_SOURCE_PROPERTIES)}"
            )
        return cls(object_type, {**DEFAULT_SOURCE_PROPERTIES, **overrides}, tuple(text), dict(written), tuple(routing))

    @property
    def modified(self) -> str:
        return MODIFIED_PROPERTY[self.object_type]

    def properties(self) -> list[str]:
        names = ["hs_object_id", "createdate", self.modified, "lifecyclestage", self.written["owner"], MERGED_PROPERTY,
                 *([ACTIVITY_PROPERTY[self.object_type]] if self.object_type in ACTIVITY_PROPERTY else []),
                 *self.source.values(), *self.text, *(self.written[k] for k in WRITTEN_FIELDS), *self.routing]
        return list(dict.fromkeys(names))


def lead_from_object(obj: Mapping[str, Any], pmap: PropertyMap) -> Lead:
    """A ``Lead`` from a SimplePublicObject as a dict (``id``, ``properties``, ``updatedAt`` …)."""
    rid = to_text(obj.get("id"))
    props: Mapping[str, Any] = obj.get("properties") or {}
    if rid is None:
        rid = to_text(props.get("hs_object_id"))
    if rid is None:
        raise MappingError("HubSpot object without an id")
    modified = require_datetime(props.get(pmap.modified) or obj.get("updated_at") or obj.get("updatedAt"),
                                pmap.modified, rid)
    attrs: dict[str, Any] = {}
    for attr in (*LEAD_ATTRIBUTES, "email"):
        value = props.get(pmap.source[attr])
        attrs[attr] = to_number(value) if attr in NUMERIC_ATTRIBUTES else to_text(value)
    written = {k: props[pmap.written[k]] for k in WRITTEN_FIELDS if pmap.written[k] in props}
    raw = dict(props)
    if pmap.source["state"] != "state" and to_text(props.get(pmap.source["state"])) is not None:
        raw.setdefault("state", props[pmap.source["state"]])  # where routing looks for the state
    return Lead(
        id=rid,
        created_at=to_datetime(props.get("createdate") or obj.get("created_at") or obj.get("createdAt")),
        modified_at=modified,
        owner_id=to_text(props.get(pmap.written["owner"])),
        text=text_card(props, pmap.text),
        stage=lead_stage(props, attrs["status"]),
        written=written,
        raw=raw,
        merged_ids=merged_ids(props.get(MERGED_PROPERTY)),
        last_activity_at=to_datetime(props.get(ACTIVITY_PROPERTY.get(pmap.object_type, ""))),
        **attrs,
    )


def object_id(obj: Mapping[str, Any]) -> str | None:
    """The object's id, when it has one (for an object that otherwise cannot be mapped)."""
    return to_text(obj.get("id")) or to_text((obj.get("properties") or {}).get("hs_object_id"))


def merged_ids(value: Any) -> tuple[str, ...]:
    """``hs_merged_object_ids`` ("101;102") -> ("101", "102")."""
    text = to_text(value)
    return tuple(p.strip() for p in text.split(";") if p.strip()) if text else ()


def lead_stage(props: Mapping[str, Any], status: str | None) -> str | None:
    """``converted`` (lifecycle stage past "lead"), ``disqualified`` (unqualified status or the
    "other" stage HubSpot portals use for it) or None while the lead is worked."""
    stage = (to_text(props.get("lifecyclestage")) or "").lower()
    if stage in CONVERTED_STAGES:
        return "converted"
    return "disqualified" if status in DISQUALIFIED or stage == "other" else None


def update_input(update: LeadUpdate, pmap: PropertyMap, max_reasons: int = 65_536) -> dict[str, Any]:
    """One ``batch/update`` input: ``{"id", "properties": {name: str}}`` (HubSpot takes strings)."""
    p: dict[str, str] = {}
    w = pmap.written
    if update.score is not None:
        p[w["score"]] = str(int(update.score))
    if update.grade is not None:
        p[w["grade"]] = update.grade
    if update.opportunity is not None:
        p[w["opportunity"]] = "true" if update.opportunity else "false"
    if update.reasons is not None:
        p[w["reasons"]] = update.reasons[:max_reasons]
    if update.model_version is not None:
        p[w["model_version"]] = update.model_version
    if update.scored_at is not None:
        p[w["scored_at"]] = str(epoch_ms(update.scored_at))
    if update.owner_id is not None:
        p[w["owner"]] = update.owner_id
    if update.routing_reason is not None and "routing_reason" in w:
        p[w["routing_reason"]] = update.routing_reason[:ROUTING_REASON_CHARS]
    return {"id": update.lead_id, "properties": p}


def rep_from_owner(owner: Mapping[str, Any]) -> Rep:
    rid = to_text(owner.get("id"))
    if rid is None:
        raise MappingError("HubSpot owner without an id")
    first, last = to_text(owner.get("first_name") or owner.get("firstName")), to_text(
        owner.get("last_name") or owner.get("lastName"))
    email = to_text(owner.get("email"))
    name = " ".join(p for p in (first, last) if p) or email or rid
    return Rep(
        id=rid,
        name=name,
        email=email,
        active=to_bool(owner.get("archived")) is not True,
        is_queue=(to_text(owner.get("type")) or "").upper() == "QUEUE",
    )


def outcome_from_deal(deal: Mapping[str, Any], lead_id: str) -> Outcome | None:
    """The ``Outcome`` of a closed deal for one associated contact/lead; ``None`` while open."""
    props: Mapping[str, Any] = deal.get("properties") or {}
    stage = (to_text(props.get("dealstage")) or "").lower()
    won = to_bool(props.get("hs_is_closed_won"))
    closed = to_bool(props.get("hs_is_closed"))
    if not (stage in CLOSED_STAGES or won is True or closed is True):
        return None
    deal_id = to_text(deal.get("id")) or to_text(props.get("hs_object_id"))
    closed_at = to_datetime(props.get("closedate")) or to_datetime(props.get("hs_lastmodifieddate"))
    if deal_id is None or closed_at is None:
        return None
    return Outcome(
        lead_id=lead_id,
        opportunity_id=deal_id,
        won=won is True or stage == "closedwon",
        closed_at=closed_at,
        owner_id=to_text(props.get("hubspot_owner_id")),
        amount=to_number(props.get("amount")),
    )


def label_lead(lead: Lead, deal: Mapping[str, Any] | None, *, label: str, until: datetime,
               stale_after: timedelta) -> LabelledLead | None:
    """Training label (same rule as Salesforce, see ``connectors.salesforce.mapping.label_lead``).

    Converted = ``lifecyclestage`` past "lead" (opportunity, customer, evangelist).
    """
    stage = lead_stage(lead.raw, lead.status)
    if stage == "converted":
        if label == "converted":
            return LabelledLead(lead, True, lead.modified_at)
        outcome = outcome_from_deal(deal, lead.id) if deal is not None else None
        return None if outcome is None else LabelledLead(lead, outcome.won, outcome.closed_at)
    if stage == "disqualified":
        return LabelledLead(lead, False, lead.modified_at)
    if lead.created_at is not None and lead.created_at <= until - stale_after:
        return LabelledLead(lead, False, lead.created_at + stale_after)
    return None
