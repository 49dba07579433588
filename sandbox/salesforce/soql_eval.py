"""Evaluating compiled SOQL: the ``Query`` value, predicate builders and ``execute``.

``soql.parse`` builds a ``Query`` from closures made here; ``execute`` filters once,
sorts once (stable sorts, last key first) and slices for OFFSET / LIMIT.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sandbox.salesforce.values import ms

Predicate = Callable[[dict[str, Any]], bool]
OPS: dict[str, Callable[[Any, Any], bool]] = {"=": operator.eq, "!=": operator.ne, "<>": operator.ne,
                                              "<": operator.lt, "<=": operator.le, ">": operator.gt,
                                              ">=": operator.ge}
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\",
           "_": "\\_", "%": "\\%"}  # \_ and \% stay escaped: they only mean something in LIKE
RELATIVE = re.compile(r"^(TODAY|YESTERDAY|TOMORROW|LAST_N_DAYS:(\d+)|NEXT_N_DAYS:(\d+))$", re.I)


@dataclass(frozen=True)
class Query:
    """A compiled query: run it with ``execute``."""

    obj: str
    fields: tuple[str, ...]  # canonical names, in SELECT order
    count_only: bool
    where: Predicate | None
    order: tuple[tuple[str, bool, bool, Callable[[Any], Any]], ...]  # field, desc, nulls_last, sort key
    limit: int | None
    offset: int
    aggregates: tuple[tuple[str, str, str], ...] = ()  # (alias, field, COUNT|MIN|MAX) of each aggregate
    group_by: tuple[str, ...] = ()

    @property
    def aggregate(self) -> bool:
        """An aggregate query: rows are groups (``AggregateResult``), not records."""
        return bool(self.aggregates or self.group_by)


def execute(q: Query, records: Iterable[dict[str, Any]], include_deleted: bool = False) -> list[dict[str, Any]]:
    """Filter, sort, offset and limit ``records`` (store dicts, not copied)."""
    if q.aggregate:
        return _aggregate(q, records, include_deleted)
    out = list(matching(q.where, records, include_deleted))
    for name, desc, nulls_last, norm in reversed(q.order):  # stable sorts, last key first
        def key(r: dict[str, Any], name: str = name, norm: Callable[[Any], Any] = norm,
                flip: bool = nulls_last != desc) -> tuple[bool, Any]:
            v = r.get(name)
            return ((v is None) if flip else (v is not None)), (None if v is None else norm(v))
        out.sort(key=key, reverse=desc)
    end = None if q.limit is None else q.offset + q.limit
    return out[q.offset:end]


def matching(pred: Predicate | None, records: Iterable[dict[str, Any]],
             include_deleted: bool) -> Iterator[dict[str, Any]]:
    """The records ``pred`` holds for, one at a time (an aggregate over a million leads keeps none)."""
    for rec in records:
        if not include_deleted and rec.get("IsDeleted"):
            continue
        try:
            if pred is None or pred(rec):
                yield rec
        except TypeError:  # a value of an unexpected type never matches
            continue


def norm_for(kind: str) -> Callable[[Any], Any]:
    """How values of a field category are compared and sorted."""
    if kind == "text":
        return lambda v: str(v).casefold()  # SOQL compares and sorts text case-insensitively
    if kind == "id":
        return lambda v: str(v)[:15]  # 15- and 18-character ids name the same record
    if kind == "datetime":
        return lambda v: ms(v) if isinstance(v, datetime) else v
    return lambda v: v


@dataclass(frozen=True)
class Range:
    """A relative date literal: the half-open interval [start, end)."""

    start: Any
    end: Any


def relative(m: re.Match[str], now: datetime, kind: str) -> Range:
    """A relative date literal (TODAY, LAST_N_DAYS:n, ...) as a half-open range on ``now``'s calendar."""
    today = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    word = m.group(1).upper()
    if word == "TODAY":
        start, end = today, today + timedelta(days=1)
    elif word == "YESTERDAY":
        start, end = today - timedelta(days=1), today
    elif word == "TOMORROW":
        start, end = today + timedelta(days=1), today + timedelta(days=2)
    elif m.group(2) is not None:
        start, end = today - timedelta(days=int(m.group(2))), today + timedelta(days=1)
    else:
        start, end = today + timedelta(days=1), today + timedelta(days=1 + int(m.group(3)))
    return Range(start.date(), end.date()) if kind == "date" else Range(start, end)


def compare(name: str, op: str, lit: Any, norm: Callable[[Any], Any]) -> Predicate:
    """A predicate for ``field op literal`` with SOQL's null semantics."""
    if isinstance(lit, Range):
        lo, hi = lit.start, lit.end
        inside: Predicate = lambda r: (v := r.get(name)) is not None and lo <= norm(v) < hi  # noqa: E731
        table: dict[str, Predicate] = {
            "=": inside, "!=": lambda r: not inside(r), "<>": lambda r: not inside(r),
            "<": lambda r: (v := r.get(name)) is not None and norm(v) < lo,
            "<=": lambda r: (v := r.get(name)) is not None and norm(v) < hi,
            ">": lambda r: (v := r.get(name)) is not None and norm(v) >= hi,
            ">=": lambda r: (v := r.get(name)) is not None and norm(v) >= lo,
        }
        return table[op]
    if lit is None:
        if op in ("!=", "<>"):
            return lambda r: r.get(name) is not None
        if op == "=":
            return lambda r: r.get(name) is None
        return lambda r: False
    fn = OPS[op]
    target = norm(lit)
    if op in ("!=", "<>"):
        return lambda r: (v := r.get(name)) is None or norm(v) != target
    return lambda r: (v := r.get(name)) is not None and fn(norm(v), target)


def unquote(text: str) -> str:
    """A quoted SOQL string literal -> its text (backslash escapes resolved)."""
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), body)


def like(pattern: str) -> re.Pattern[str]:
    """A LIKE pattern (``%`` any run, ``_`` one character, case-insensitive) -> a regex."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _aggregate(q: Query, records: Iterable[dict[str, Any]], include_deleted: bool) -> list[dict[str, Any]]:
    """Group the matching records: one row per group with the grouped fields and each aggregate
    (``COUNT(f)`` counts non-null values; ``MIN``/``MAX`` ignore nulls and are null for none)."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    if not q.group_by:  # an ungrouped aggregate answers one row even when nothing matches
        groups[()] = {alias: 0 if fn == "COUNT" else None for alias, _, fn in q.aggregates}
    for rec in matching(q.where, records, include_deleted):
        key = tuple(rec.get(name) for name in q.group_by)
        row = groups.get(key)
        if row is None:
            row = groups[key] = {**dict(zip(q.group_by, key, strict=True)),
                                 **{alias: 0 if fn == "COUNT" else None for alias, _, fn in q.aggregates}}
        for alias, name, fn in q.aggregates:
            v = rec.get(name)
            if v is None:
                continue
            if fn == "COUNT":
                row[alias] += 1
            elif row[alias] is None or (v < row[alias] if fn == "MIN" else v > row[alias]):
                row[alias] = v
    sorted_rows = execute(Query(q.obj, q.fields, False, None, q.order, q.limit, q.offset), list(groups.values()), True)
    return sorted_rows
