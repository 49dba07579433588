"""What the routing policy sees of a lead: ``routing_context`` and the segments it derives.

A rep's edge is per segment, and territories are cut the same way, so besides the lead's own
attributes the policy sees two derived ones: ``size_band`` (company size, as sales teams
segment it) and ``region`` (Americas / EMEA / APAC). A per-rep model over three regions
learns from four times as many leads per cell as one over a dozen countries. Country names
and ISO 3166 alpha-2 codes are both accepted, case-insensitively; an unknown or empty value
gives ``None`` (the routing policy then ignores the attribute).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from connectors.records import Lead
from scoring.types import Score

_AMERICAS = {
    "united states": "us", "usa": "us", "united states of america": "us", "canada": "ca", "mexico": "mx",
    "brazil": "br", "argentina": "ar", "chile": "cl", "colombia": "co", "peru": "pe", "uruguay": "uy",
    "costa rica": "cr", "puerto rico": "pr", "ecuador": "ec", "venezuela": "ve", "panama": "pa",
}
_EMEA = {
    "united kingdom": "gb", "uk": "gb", "great britain": "gb", "england": "gb", "ireland": "ie", "germany": "de",
    "france": "fr", "netherlands": "nl", "belgium": "be", "luxembourg": "lu", "spain": "es", "portugal": "pt",
    "italy": "it", "switzerland": "ch", "austria": "at", "sweden": "se", "norway": "no", "denmark": "dk",
    "finland": "fi", "iceland": "is", "poland": "pl", "czech republic": "cz", "czechia": "cz", "hungary": "hu",
    "romania": "ro", "greece": "gr", "turkey": "tr", "türkiye": "tr", "israel": "il", "ukraine": "ua",
    "united arab emirates": "ae", "uae": "ae", "saudi arabia": "sa", "qatar": "qa", "egypt": "eg",
    "south africa": "za", "nigeria": "ng", "kenya": "ke", "morocco": "ma", "estonia": "ee", "latvia": "lv",
    "lithuania": "lt", "slovakia": "sk", "slovenia": "si", "croatia": "hr", "serbia": "rs", "bulgaria": "bg",
}
_APAC = {
    "china": "cn", "people's republic of china": "cn", "hong kong": "hk", "taiwan": "tw", "japan": "jp",
    "south korea": "kr", "korea": "kr", "republic of korea": "kr", "india": "in", "singapore": "sg",
    "malaysia": "my", "indonesia": "id", "thailand": "th", "vietnam": "vn", "viet nam": "vn", "philippines": "ph",
    "australia": "au", "new zealand": "nz", "pakistan": "pk", "bangladesh": "bd", "sri lanka": "lk",
}
REGION_OF: dict[str, str] = {}
for _region, _table in (("Americas", _AMERICAS), ("EMEA", _EMEA), ("APAC", _APAC)):
    for _name, _code in _table.items():
        REGION_OF[_name] = REGION_OF[_code] = _region
REGION_OF.update({"中国": "APAC", "日本": "APAC", "deutschland": "EMEA", "españa": "EMEA", "brasil": "Americas"})


def region(country: str | None) -> str | None:
    """``Americas``, ``EMEA`` or ``APAC`` for a country name or ISO code; ``None`` when unknown."""
    if not country:
        return None
    return REGION_OF.get(country.strip().casefold())


# Company-size bands as sales teams segment (and as territories are usually cut): a rep's
# edge is per segment, and a raw head count's long tail hides it from a linear model.
SIZE_BANDS = ((100, "SMB"), (1000, "MidMarket"))


def size_band(employees: float | None) -> str | None:
    """``SMB`` (< 100 employees), ``MidMarket`` (< 1,000), ``Enterprise``; None when unknown."""
    if employees is None or math.isnan(employees) or employees < 0:
        return None
    return next((name for limit, name in SIZE_BANDS if employees < limit), "Enterprise")


# Where a lead's state/province sits in the record the connector pulled (Salesforce ``State``,
# HubSpot ``state``), when the org's query or property list includes it.
STATE_FIELDS = ("State", "state", "StateCode")


def lead_attributes(lead: Lead) -> dict[str, Any]:
    """What territories and assignment rules read: the lead's own fields, whatever the policy
    learns from (``routing_context``). Every structured attribute (title, company, industry,
    employees, revenue, country, source, status), ``state`` when the record has one, and every
    other plain field of the pulled record under its CRM name (custom fields like ``Region__c``)."""
    out: dict[str, Any] = {k: v for k, v in lead.raw.items() if isinstance(v, str | int | float | bool)}
    out.update({k: v for k, v in lead.features().items() if k != "text"})
    state = next((lead.raw[k] for k in STATE_FIELDS if isinstance(lead.raw.get(k), str) and lead.raw[k].strip()), None)
    out["state"] = state
    return {k: v for k, v in out.items() if v is not None and v != ""}


def routing_context(lead: Lead, s: Score | None, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """What the routing policy sees of a lead: the configured ``fields`` (all structured
    attributes plus ``size_band`` and ``region`` when None) and its score."""
    attrs: dict[str, Any] = {k: v for k, v in lead.features().items() if k != "text"}
    attrs["size_band"] = size_band(lead.employees)
    attrs["region"] = region(lead.country)
    keep = attrs if fields is None else {k: attrs.get(k) for k in fields}
    ctx = {k: v for k, v in keep.items() if v is not None}
    if s is not None:
        ctx["score"] = float(s.probability)
    return ctx
