"""Countries and states/provinces as CRMs store them, reduced to ISO codes so that they compare.

A CRM holds "Germany", "germany", "DE" or "DEU" for the same country, and "California",
"CA" or "US-CA" for the same state; a territory may name either form. Both sides are
reduced with ``pycountry`` (ISO 3166-1 and 3166-2, maintained upstream), plus a few
everyday spellings ISO does not list ("UK", "Russia", "Turkey"). Lookups are cached: the
router checks every rep's territory for every lead.
"""

from __future__ import annotations

import difflib
from functools import cache, lru_cache

import pycountry

# Everyday names the ISO 3166 names, official names and common names do not cover.
ALIASES: dict[str, str] = {
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "u.s.": "US", "u.s.a.": "US", "america": "US",
    "united states of america": "US", "russia": "RU", "turkey": "TR", "south korea": "KR", "korea": "KR",
    "republic of korea": "KR", "north korea": "KP", "vietnam": "VN", "macedonia": "MK", "ivory coast": "CI",
    "vatican": "VA", "vatican city": "VA", "macau": "MO", "macao": "MO", "brunei": "BN", "cape verde": "CV",
    "palestine": "PS", "micronesia": "FM", "swaziland": "SZ", "burma": "MM", "holland": "NL",
    "the netherlands": "NL", "czech republic": "CZ", "kosovo": "XK", "deutschland": "DE", "españa": "ES",
    "brasil": "BR", "schweiz": "CH", "suisse": "CH", "österreich": "AT", "italia": "IT", "méxico": "MX",
    "uae": "AE", "prc": "CN", "mainland china": "CN", "中国": "CN", "日本": "JP", "türkiye": "TR",
}


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """ISO 3166-1 alpha-2 code (``"DE"``) for a country name or code in any case; None if unknown."""
    text = " ".join(value.split()).casefold()
    if not text:
        return None
    if text in ALIASES:
        return ALIASES[text]
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return None


@cache
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for c in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            if hasattr(c, attr):
                names[getattr(c, attr)] = c.alpha_2
    return names


def country_suggestion(value: str) -> str | None:
    """The closest country name, for a "did you mean" in an error message."""
    names = {**{k.title(): v for k, v in ALIASES.items() if k.isascii()}, **_country_names()}
    close = difflib.get_close_matches(value.strip(), list(names), n=1, cutoff=0.7)
    if not close:
        lowered = {k.casefold(): k for k in names}
        close = [lowered[m] for m in difflib.get_close_matches(value.strip().casefold(), list(lowered), n=1, cutoff=0.7)]
    return close[0] if close else None


@cache
def _subdivision_index() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """(name -> codes, local code -> codes); ``CA`` is California but also a Spanish province."""
    by_name: dict[str, set[str]] = {}
    by_local: dict[str, set[str]] = {}
    for s in pycountry.subdivisions:
        by_name.setdefault(s.name.casefold(), set()).add(s.code)
        by_local.setdefault(s.code.split("-", 1)[1].casefold(), set()).add(s.code)
    return ({k: frozenset(v) for k, v in by_name.items()}, {k: frozenset(v) for k, v in by_local.items()})


@lru_cache(maxsize=4096)
def subdivision_codes(value: str, countries: frozenset[str] | None = None) -> frozenset[str]:
    """ISO 3166-2 codes (``{"US-CA"}``) a state/province name or code may mean, in any case.

    ``countries`` (alpha-2 codes) narrows an ambiguous value: ``CA`` in the US is California.
    Empty when nothing matches.
    """
    text = " ".join(value.split()).casefold()
    if not text:
        return frozenset()
    by_name, by_local = _subdivision_index()
    full = text.upper()
    if "-" in full and pycountry.subdivisions.get(code=full) is not None:
        codes: frozenset[str] = frozenset({full})
    else:
        codes = by_name.get(text, frozenset()) | by_local.get(text, frozenset())
    if countries:
        codes = frozenset(c for c in codes if c.split("-", 1)[0] in countries)
    return codes
