"""HubSpot CRM search: filterGroups (AND within a group, OR across groups), sorts,
properties, ``limit`` <= 200, ``after`` offsets, the 10,000-result cap and index lag.

A page-through re-issues the same query with a growing ``after``; the matching, sorted
list is cached per (query, store version, index cutoff), so paging 10k records costs one
filter-and-sort plus slicing.
"""

from __future__ import annotations

import fnmatch
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.hubspot.props import Prop, filter_key, sort_key, to_object

MAX_LIMIT = 200
RESULT_CAP = 10_000  # the real API refuses to page past 10,000 results of one query
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 10, 25
MAX_SORTS = 1  # a search takes ONE sorting rule (crm-apis.md §6)
CACHE_SIZE = 8

Match = Callable[[dict[str, Any]], bool]


class SearchError(ValueError):
    """A search request HubSpot would answer with 400 VALIDATION_ERROR."""


def _prop(table: dict[str, Prop], name: Any) -> Prop:
    if not isinstance(name, str) or name not in table:
        raise SearchError(f"Unable to find property {name!r} on this object type; check the property name.")
    return table[name]


def _compile_filter(table: dict[str, Prop], f: dict[str, Any]) -> Match:
    prop = _prop(table, f.get("propertyName"))
    op = f.get("operator", "EQ")

    def key(rec: dict[str, Any]) -> Any:
        return sort_key(prop, prop.value(rec))

    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        want = op == "HAS_PROPERTY"
        return lambda r: (key(r) is not None) == want
    try:
        if op in ("IN", "NOT_IN"):
            values = {filter_key(prop, v) for v in f.get("values") or []}
            inside = op == "IN"
            return lambda r: (key(r) in values) == inside if key(r) is not None else not inside
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = str(f.get("value", "")).lower()
            want = op == "CONTAINS_TOKEN"
            return lambda r: any(fnmatch.fnmatchcase(t, pattern) for t in str(key(r) or "").split()) == want
        if "value" not in f:
            raise SearchError(f"Filter on {prop.name} with operator {op} needs a value.")
        v = filter_key(prop, f["value"])
        if op == "BETWEEN":
            hi = filter_key(prop, f.get("highValue"))
            return lambda r: (k := key(r)) is not None and v <= k <= hi
    except (TypeError, ValueError) as exc:
        raise SearchError(f"Invalid filter value for {prop.name}: {exc}") from None
    compare: dict[str, Callable[[Any], bool]] = {
        "EQ": lambda k: k == v, "NEQ": lambda k: k != v, "LT": lambda k: k < v,
        "LTE": lambda k: k <= v, "GT": lambda k: k > v, "GTE": lambda k: k >= v,
    }
    if op not in compare:
        raise SearchError(f"Unsupported filter operator {op!r}.")
    test = compare[op]
    if op == "NEQ":
        return lambda r: (k := key(r)) is None or test(k)
    return lambda r: (k := key(r)) is not None and test(k)


def _compile(table: dict[str, Prop], body: dict[str, Any]) -> Match:
    groups = body.get("filterGroups") or []
    if len(groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups ({len(groups)}); the maximum is {MAX_GROUPS}.")
    total = sum(len(g.get("filters") or []) for g in groups)
    if total > MAX_FILTERS or any(len(g.get("filters") or []) > MAX_FILTERS_PER_GROUP for g in groups):
        raise SearchError(f"Too many filters; at most {MAX_FILTERS_PER_GROUP} per group and {MAX_FILTERS} in all.")
    compiled = [[_compile_filter(table, f) for f in g.get("filters") or []] for g in groups]
    query = str(body.get("query") or "").lower().strip()
    text_props = [table[n] for n in ("firstname", "lastname", "email", "company", "dealname") if n in table]

    def match(rec: dict[str, Any]) -> bool:
        if compiled and not any(all(f(rec) for f in g) for g in compiled):
            return False
        if query:
            return any(query in str(p.value(rec) or "").lower() for p in text_props)
        return True

    return match


def _sort_spec(table: dict[str, Prop], sorts: Any) -> list[tuple[Prop, bool]]:
    if isinstance(sorts, list) and len(sorts) > MAX_SORTS:
        raise SearchError(f"There was a problem with the request: a search accepts {MAX_SORTS} sorting rule, "
                          f"got {len(sorts)}. Sort by one property and narrow further with filters.")
    spec = []
    for s in sorts or []:
        if isinstance(s, str):  # the API also takes "name" / "-name"
            spec.append((_prop(table, s.lstrip("-")), s.startswith("-")))
        else:
            spec.append((_prop(table, s.get("propertyName")), str(s.get("direction", "ASCENDING")).upper() == "DESCENDING"))
    return spec


def _scrambled(record_id: str) -> int:
    """A fixed, id-independent-looking order for ties (Knuth's multiplicative hash of the id)."""
    return (int(record_id[3:15]) * 2_654_435_761) % 2**32


def _ordered(table: dict[str, Prop], records: list[dict[str, Any]], spec: list[tuple[Prop, bool]]) -> list[dict[str, Any]]:
    # Stable sorts, last key first; nulls sort last. Without a sorting rule results come by id.
    # Records tying on the sort come in an order of the sandbox's own, not by id: on the real
    # API it is undefined, so a client must not lean on it (a tie-break is a filter, not an order).
    out = sorted(records, key=lambda r: int(r["Id"][3:15]) if not spec else _scrambled(r["Id"]))
    for prop, desc in reversed(spec):
        present = [r for r in out if sort_key(prop, prop.value(r)) is not None]
        absent = [r for r in out if sort_key(prop, prop.value(r)) is None]
        present.sort(key=lambda r, p=prop: sort_key(p, p.value(r)), reverse=desc)  # type: ignore[misc]
        out = present + absent
    return out


def search(
    table: dict[str, Prop],
    records: Callable[[], list[dict[str, Any]]],
    body: Any,
    default_props: tuple[str, ...],
    cache_key: tuple[Any, ...],
    cache: OrderedDict[Any, list[dict[str, Any]]],
    visible_until: datetime | None,
) -> dict[str, Any]:
    """Run one search request body; raises ``SearchError`` for what HubSpot rejects with 400."""
    if not isinstance(body, dict):
        raise SearchError("The search body must be a JSON object.")
    try:
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise SearchError("limit and after must be integers.") from None
    if not 0 < limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
    if after >= RESULT_CAP:
        raise SearchError(f"Paging past {RESULT_CAP} results is not supported (after={after}); narrow the query "
                          "with a filter, e.g. on the last-modified date, and search again.")
    query_id = json.dumps([body.get("filterGroups"), body.get("sorts"), body.get("query")], sort_keys=True, default=str)
    key = (*cache_key, query_id, visible_until)
    hits = cache.get(key)
    if hits is None:
        match = _compile(table, body)
        spec = _sort_spec(table, body.get("sorts"))
        found = [r for r in records() if (visible_until is None or r["SystemModstamp"] <= visible_until) and match(r)]
        hits = _ordered(table, found, spec)
        cache[key] = hits
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    names = [n for n in body.get("properties") or default_props if n in table]
    end = min(after + limit, RESULT_CAP)
    page = [to_object(table, r, names) for r in hits[after:end]]
    out: dict[str, Any] = {"total": len(hits), "results": page}
    if end < len(hits):  # also at the cap: the next page link then leads to the 400, as on the real API
        out["paging"] = {"next": {"after": str(end), "link": f"?after={end}"}}
    return out
