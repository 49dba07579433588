"""HubSpot property views of the canonical (Salesforce-named) records.

Each HubSpot object type (contacts, leads, deals) is a table of properties over one
canonical object. Values go out as HubSpot sends them: every property value is a string
(or null), datetimes as ISO-8601 with milliseconds and ``Z``, numbers without a
trailing ``.0``, booleans ``"true"``/``"false"``. Filters accept datetimes as epoch
milliseconds or ISO strings, as the real search API does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sandbox.store import ACTIVITY_AT, ID_PREFIX, MERGED, UNREADABLE_STAMP, Store

Getter = Callable[[dict[str, Any]], Any]

SOURCE_TO_HS = {"Web": "ORGANIC_SEARCH", "Phone Inquiry": "DIRECT_TRAFFIC", "Advertisement": "PAID_SEARCH",
                "Partner Referral": "REFERRALS", "Trade Show": "OFFLINE", "Purchased List": "OTHER_CAMPAIGNS"}
STAGE_TO_HS = {"Closed Won": "closedwon", "Closed Lost": "closedlost", "Qualification": "qualifiedtobuy"}
LEAD_STAGE = {"Open - Not Contacted": "new-stage-id", "Working - Contacted": "attempting-stage-id",
              "Closed - Converted": "qualified-stage-id", "Closed - Not Converted": "unqualified-stage-id"}
# Contacts' "Lead status" (hs_lead_status, a default property of every portal) from the lead's Status.
LEAD_STATUS = {"Open - Not Contacted": "NEW", "Working - Contacted": "IN_PROGRESS",
               "Closed - Converted": "OPEN_DEAL", "Closed - Not Converted": "UNQUALIFIED"}
HS_TYPE_TO_SF = {"string": "string", "number": "double", "date": "date", "datetime": "datetime",
                 "enumeration": "picklist", "bool": "boolean"}
SF_TYPE_TO_HS = {"string": "string", "textarea": "string", "email": "string", "double": "number", "int": "number",
                 "currency": "number", "percent": "number", "date": "date", "datetime": "datetime",
                 "picklist": "enumeration", "boolean": "bool", "reference": "string", "id": "string"}


class BadValue(ValueError):
    """A property value that does not parse as the property's type (``error`` is HubSpot's code)."""

    def __init__(self, name: str, value: Any, error: str, message: str) -> None:
        super().__init__(message)
        self.name, self.value, self.error = name, value, error


@dataclass(frozen=True)
class Prop:
    """One HubSpot property: its type, the canonical field behind it (None = derived) and
    how to read it. ``read_only`` properties reject writes, as HubSpot's calculated ones do."""

    name: str
    type: str  # string | number | date | datetime | enumeration | bool
    field: str | None = None
    get: Getter | None = None
    read_only: bool = False

    def value(self, rec: dict[str, Any]) -> Any:
        if self.get is not None:
            return self.get(rec)
        return rec.get(self.field) if self.field else None


def hs_id(rid: str) -> str:
    """Canonical id ``00Q000000000123AAA`` -> HubSpot's numeric id ``"123"``."""
    return str(int(rid[3:15]))


def canonical_id(obj: str, hid: str) -> str | None:
    """HubSpot id -> canonical id of ``obj``; None when it is not a number."""
    if not hid.isdigit() or len(hid) > 12:
        return None
    return f"{ID_PREFIX[obj]}{int(hid):012d}AAA"


def iso(v: datetime | date) -> str:
    if not isinstance(v, datetime):
        v = datetime.combine(v, time(0), tzinfo=UTC)
    return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def epoch_ms(v: datetime | date) -> int:
    if not isinstance(v, datetime):
        v = datetime.combine(v, time(0), tzinfo=UTC)
    return int(v.timestamp() * 1000)


def parse_instant(text: Any) -> datetime:
    """Epoch milliseconds (number or digit string) or ISO-8601 -> aware datetime."""
    s = str(text).strip()
    if s.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(s) / 1000, tz=UTC)
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def fmt(prop: Prop, v: Any) -> str | None:
    """A canonical value as HubSpot would send it."""
    if v is None or v == "":
        return None
    if prop.type in ("datetime", "date") and isinstance(v, date):
        return iso(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def sort_key(prop: Prop, v: Any) -> Any:
    """A canonical value in a form that compares as HubSpot's search compares it."""
    if v is None or v == "":
        return None
    if prop.type in ("datetime", "date"):
        return epoch_ms(v) if isinstance(v, date) else epoch_ms(parse_instant(v))
    if prop.type == "number":
        return float(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v).lower()


def filter_key(prop: Prop, raw: Any) -> Any:
    """A filter's value in the same comparable form as ``sort_key``."""
    if prop.type in ("datetime", "date"):
        return epoch_ms(parse_instant(raw))
    if prop.type == "number":
        return float(raw)
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).lower()


def parse_value(prop: Prop, raw: Any) -> Any:
    """A written property value -> the canonical value; raises ``BadValue``."""
    if raw is None or raw == "":
        return None
    try:
        if prop.type == "number":
            f = float(raw)
            return int(f) if f.is_integer() and prop.field in ("NumberOfEmployees",) else f
        if prop.type == "datetime":
            return parse_instant(raw).date() if prop.field == "CloseDate" else parse_instant(raw)
        if prop.type == "date":
            return parse_instant(raw).date()
    except (TypeError, ValueError, OverflowError):
        code = "INVALID_DATE" if prop.type in ("date", "datetime") else "INVALID_DOUBLE"
        raise BadValue(prop.name, raw, code, f"{raw} was not a valid {prop.type}.") from None
    if prop.type == "bool":
        if str(raw).lower() not in ("true", "false"):
            raise BadValue(prop.name, raw, "INVALID_BOOLEAN", f"{raw} was not a valid boolean (use true or false).")
        return str(raw).lower() == "true"
    return str(raw)


def _owner(queue_id: str | None) -> Getter:
    def get(rec: dict[str, Any]) -> str | None:
        oid = rec.get("OwnerId")
        return None if not oid or oid == queue_id else hs_id(oid)

    return get


def _lifecycle(store: Store) -> Getter:
    def get(rec: dict[str, Any]) -> str:
        if rec.get("IsConverted"):
            opp = store.get("Opportunity", rec.get("ConvertedOpportunityId") or "")
            return "customer" if opp and opp.get("IsWon") else "opportunity"
        return "other" if rec.get("Status") == "Closed - Not Converted" else "lead"

    return get


def _merged(rec: dict[str, Any]) -> str | None:
    return ";".join(hs_id(r) for r in rec.get(MERGED, [])) or None


def _name(rec: dict[str, Any]) -> str:
    return " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p)


def build_props(store: Store, obj_type: str, queue_id: str | None) -> dict[str, Prop]:
    """The property table of ``contacts``, ``leads`` or ``deals`` (custom properties included)."""
    owner = Prop("hubspot_owner_id", "enumeration", "OwnerId", _owner(queue_id))
    oid = Prop("hs_object_id", "number", "Id", lambda r: hs_id(r["Id"]), read_only=True)
    created = Prop("createdate", "datetime", "CreatedDate", read_only=True)
    if obj_type == "contacts":
        props = [
            Prop("firstname", "string", "FirstName"), Prop("lastname", "string", "LastName"),
            Prop("email", "string", "Email"), Prop("jobtitle", "string", "Title"), Prop("company", "string", "Company"),
            Prop("industry", "string", "Industry"), Prop("numberofemployees", "number", "NumberOfEmployees"),
            Prop("annualrevenue", "number", "AnnualRevenue"), Prop("country", "string", "Country"),
            Prop("state", "string", "State"),
            Prop("hs_analytics_source", "enumeration", None, lambda r: SOURCE_TO_HS.get(r.get("LeadSource") or ""), True),
            Prop("lifecyclestage", "enumeration", None, _lifecycle(store), True),
            Prop("hs_lead_status", "enumeration", None, lambda r: LEAD_STATUS.get(r.get("Status") or ""), True),
            owner, Prop("message", "string", "Description"), created,
            Prop("lastmodifieddate", "datetime", "SystemModstamp", read_only=True), oid,
            Prop("hs_merged_object_ids", "enumeration", None, _merged, True),
            # set by logging a call / email / meeting (the world's contact, the admin's activity)
            Prop("hs_last_sales_activity_timestamp", "datetime", None, lambda r: r.get(ACTIVITY_AT), True),
        ]
    elif obj_type == "leads":
        props = [
            Prop("hs_lead_name", "string", None, _name, True),
            Prop("hs_pipeline", "enumeration", None, lambda r: "lead-pipeline-id", True),
            Prop("hs_pipeline_stage", "enumeration", None, lambda r: LEAD_STAGE.get(r.get("Status") or ""), True),
            owner, Prop("hs_createdate", "datetime", "CreatedDate", read_only=True), created,
            Prop("hs_lastmodifieddate", "datetime", "SystemModstamp", read_only=True), oid,
        ]
    else:
        props = [
            Prop("dealname", "string", "Name"), Prop("amount", "number", "Amount"),
            Prop("dealstage", "enumeration", None, lambda r: STAGE_TO_HS.get(r.get("StageName") or "", "appointmentscheduled"), True),
            Prop("pipeline", "enumeration", None, lambda r: "default", True),
            Prop("closedate", "datetime", "CloseDate"),
            Prop("hs_is_closed_won", "bool", None, lambda r: bool(r.get("IsWon")), True),
            Prop("hs_is_closed", "bool", None, lambda r: bool(r.get("IsClosed")), True),
            owner, created, Prop("hs_lastmodifieddate", "datetime", "SystemModstamp", read_only=True), oid,
        ]
    table = {p.name: p for p in props}
    # HubSpot property names are lower-case; custom fields with such names are properties here.
    for name, ftype in store.custom_fields[CANONICAL[obj_type]].items():
        if name == name.lower() and name not in table:
            table[name] = Prop(name, SF_TYPE_TO_HS.get(ftype, "string"), name)
    return table


CANONICAL = {"contacts": "Lead", "leads": "Lead", "deals": "Opportunity"}
DEFAULT_PROPS = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "leads": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id", "pipeline"),
}
MODIFIED_PROP = {"contacts": "lastmodifieddate", "leads": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}


def to_object(table: dict[str, Prop], rec: dict[str, Any], names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A canonical record as HubSpot's SimplePublicObject with the requested properties."""
    props = {n: fmt(table[n], table[n].value(rec)) for n in names if n in table}
    if rec.get(UNREADABLE_STAMP):  # the sandbox's broken record: a stamp that is not a date-time
        props.update({n: "not-a-date" for n in names if n in MODIFIED_PROP.values() and n in table})
    out = {"id": hs_id(rec["Id"]), "properties": props, "createdAt": iso(rec["CreatedDate"]),
           "updatedAt": iso(rec["SystemModstamp"]), "archived": bool(rec.get("IsDeleted"))}
    if rec.get("IsDeleted"):
        out["archivedAt"] = iso(rec["SystemModstamp"])  # deletion moved the stamp
    return out
