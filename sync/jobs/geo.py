"""Sales regions (Americas / EMEA / APAC) from a lead's country, for routing.

Territories and rep specialisms are usually cut by region, not by country: a per-rep model
over three regions learns from four times as many leads per cell as one over a dozen
countries. Names and ISO 3166 alpha-2 codes are both accepted, case-insensitively; an
unknown or empty country gives ``None`` (the routing policy then ignores the attribute).
"""

from __future__ import annotations

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
