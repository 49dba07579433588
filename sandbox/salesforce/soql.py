"""The SOQL subset the sandbox understands, compiled to Python predicates.

``SELECT f, … | COUNT() FROM Lead|User|Opportunity [WHERE …] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]``, and aggregate queries ``SELECT g, COUNT(f) [alias],
MIN(f), MAX(f) … [GROUP BY g, …]`` (rows of ``AggregateResult``; an unaliased aggregate is ``expr0``, ``expr1``…;
a selected field must be grouped, as Salesforce requires) with ``= != <> < <= > >= IN NOT IN LIKE``,
``AND`` / ``OR`` / ``NOT`` and parentheses, ``null``, ``true``/``false``, quoted strings
with backslash escapes, numbers, UNQUOTED date and dateTime literals (``2024-01-01``,
``2024-01-01T00:00:00Z``, ``…+05:30``) and the relative date literals ``TODAY``,
``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n``, ``NEXT_N_DAYS:n`` (on the simulated clock).

The WHERE clause is compiled once into a closure and the result sorted once, so a 10k
record query costs milliseconds. Errors carry Salesforce's ``errorCode`` and its message
shape: the offending line, a caret, ``ERROR at Row:r:Column:c`` and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import reduce
from typing import Any

from sandbox.salesforce.soql_eval import (
    RELATIVE,
    Predicate,
    Query,
    compare,
    execute,
    like,
    norm_for,
    relative,
    unquote,
)
from sandbox.salesforce.values import category, parse_datetime
from sandbox.store import OBJECTS

__all__ = ["OBJECTS", "Query", "SoqlError", "execute", "parse", "tokenize"]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:\\.|[^'\\])*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
""", re.VERBOSE)
_WIRE_TYPE = {"datetime": "dateTime", "date": "date", "boolean": "boolean", "number": "double"}


class SoqlError(Exception):
    """A query Salesforce would refuse: ``code`` is the REST ``errorCode``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    kind: str  # str | datetime | date | num | ident | op | punct | eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


def tokenize(soql: str) -> list[Token]:
    """Split a query into tokens; an unknown character is MALFORMED_QUERY."""
    out: list[Token] = []
    pos = 0
    while pos < len(soql):
        m = _TOKEN.match(soql, pos)
        if m is None:
            raise error("MALFORMED_QUERY", soql, pos, f"unexpected token: {soql[pos]}")
        kind = m.lastgroup or "ws"
        if kind != "ws":
            out.append(Token(kind, m.group(), pos))
        pos = m.end()
    out.append(Token("eof", "<EOF>", len(soql)))
    return out


def error(code: str, soql: str, pos: int, reason: str) -> SoqlError:
    """Salesforce's message shape: the offending line, a caret under the column, the reason."""
    start = soql.rfind("\n", 0, pos) + 1
    end = soql.find("\n", pos)
    line = soql[start:] if end < 0 else soql[start:end]
    col = pos - start + 1
    row = soql.count("\n", 0, pos) + 1
    return SoqlError(code, f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{reason}")


def parse(soql: str, fields_of: Callable[[str], Mapping[str, str]], now: datetime) -> Query:
    """Compile ``soql`` against the schema ``fields_of(obj) -> {field: describe type}``;
    ``now`` (the simulated clock) anchors relative date literals."""
    if not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(soql, fields_of, now).query()


class _Parser:
    def __init__(self, soql: str, fields_of: Callable[[str], Mapping[str, str]], now: datetime) -> None:
        self.soql, self.fields_of, self.now = soql, fields_of, now
        self.toks = tokenize(soql)
        self.i = 0
        self.types: dict[str, str] = {}
        self.lower: dict[str, str] = {}

    # -------------------------------------------------------------- helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def unexpected(self, t: Token | None = None) -> SoqlError:
        t = t or self.tok
        return error("MALFORMED_QUERY", self.soql, t.pos, f"unexpected token: {t.text}")

    def keyword(self, *words: str) -> Token:
        t = self.tok
        if t.upper not in words:
            raise self.unexpected()
        return self.take()

    def field(self, t: Token) -> str:
        if t.kind != "ident":
            raise self.unexpected(t)
        if "." in t.text:
            rel = t.text.split(".")[0]
            raise error("INVALID_FIELD", self.soql, t.pos,
                        f"Didn't understand relationship '{rel}' in field path. If you are attempting to use a "
                        "custom relationship, be sure to append the '__r' after the custom relationship name. "
                        "Please reference your WSDL or the describe call for the appropriate names.")
        name = self.lower.get(t.text.lower())
        if name is None:
            raise error("INVALID_FIELD", self.soql, t.pos,
                        f"No such column '{t.text}' on entity '{self.obj}'. If you are attempting to use a custom "
                        "field, be sure to append the '__c' after the custom field name. Please reference your "
                        "WSDL or the describe call for the appropriate names.")
        return name

    # -------------------------------------------------------------- grammar
    def query(self) -> Query:
        self.keyword("SELECT")
        count_only = False
        raw: list[Token] = []
        counted: list[tuple[Token, Token, str | None]] = []  # COUNT|MIN|MAX(field) [alias]: (fn, field, alias)
        if self.tok.upper == "COUNT" and self.toks[self.i + 1].text == "(" and self.toks[self.i + 2].text == ")":
            self.i += 3
            count_only = True
        else:
            self.select_item(raw, counted)
            while self.tok.text == ",":
                self.take()
                self.select_item(raw, counted)
        self.keyword("FROM")
        ot = self.take()
        obj = next((o for o in OBJECTS if o.lower() == ot.text.lower()), None) if ot.kind == "ident" else None
        if obj is None:
            if ot.kind != "ident":
                raise self.unexpected(ot)
            raise error("INVALID_TYPE", self.soql, ot.pos,
                        f"sObject type '{ot.text}' is not supported. If you are attempting to use a custom object, "
                        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
                        "describe call for the appropriate names.")
        self.obj = obj
        self.types = dict(self.fields_of(obj))
        self.lower = {k.lower(): k for k in self.types}
        fields: list[str] = []
        for t in raw:
            name = self.field(t)
            if name in fields:
                raise error("MALFORMED_QUERY", self.soql, t.pos, f"duplicate field selected: {name}")
            fields.append(name)
        aggregates = tuple((alias or f"expr{k}", self.field(f), fn.upper)
                           for k, (fn, f, alias) in enumerate(counted))
        where = None
        if self.tok.upper == "WHERE":
            self.take()
            where = self.condition()
        group_by: list[str] = []
        if self.tok.upper == "GROUP":
            self.take()
            self.keyword("BY")
            group_by.append(self.field(self.take()))
            while self.tok.text == ",":
                self.take()
                group_by.append(self.field(self.take()))
        if aggregates or group_by:
            for t, name in zip(raw, fields, strict=True):
                if name not in group_by:  # Salesforce: a plain field must be grouped
                    raise error("MALFORMED_QUERY", self.soql, t.pos, f"Field must be grouped or aggregated: {name}")
        order = self.order_by() if self.tok.upper == "ORDER" else ()
        for name, *_ in order:
            if (aggregates or group_by) and name not in group_by:
                raise error("MALFORMED_QUERY", self.soql, 0, f"Ordered field must be grouped or aggregated: {name}")
        limit = self.integer("LIMIT")
        offset = self.integer("OFFSET") or 0
        if self.tok.kind != "eof":
            raise self.unexpected()
        return Query(obj, tuple(fields), count_only, where, order, limit, offset, aggregates, tuple(group_by))

    def select_item(self, raw: list[Token], counted: list[tuple[Token, Token, str | None]]) -> None:
        """A selected field, or ``COUNT|MIN|MAX(field)`` with an optional alias (an aggregate query)."""
        if self.tok.upper in ("COUNT", "MIN", "MAX") and self.toks[self.i + 1].text == "(":
            head = self.take()
            self.take()
            inner = self.take()
            if inner.kind != "ident" or self.take().text != ")":
                raise self.unexpected(inner)
            alias = None
            if self.tok.kind == "ident" and self.tok.upper not in ("FROM",):
                alias = self.take().text
            counted.append((head, inner, alias))
            return
        raw.append(self.take())

    def integer(self, word: str) -> int | None:
        if self.tok.upper != word:
            return None
        self.take()
        t = self.take()
        if t.kind != "num" or not t.text.isdigit():
            raise self.unexpected(t)
        return int(t.text)

    def order_by(self) -> tuple[tuple[str, bool, bool, Callable[[Any], Any]], ...]:
        self.take()
        self.keyword("BY")
        out = []
        while True:
            name = self.field(self.take())
            desc = False
            if self.tok.upper in ("ASC", "DESC"):
                desc = self.take().upper == "DESC"
            nulls_last = desc  # Salesforce: nulls first ascending, last descending
            if self.tok.upper == "NULLS":
                self.take()
                nulls_last = self.keyword("FIRST", "LAST").upper == "LAST"
            out.append((name, desc, nulls_last, norm_for(category(self.types[name]))))
            if self.tok.text != ",":
                return tuple(out)
            self.take()

    def condition(self) -> Predicate:
        parts = [self.factor()]
        joiner = ""
        while self.tok.upper in ("AND", "OR"):
            if joiner and self.tok.upper != joiner:  # SOQL needs parentheses to mix AND and OR
                raise self.unexpected()
            joiner = self.take().upper
            parts.append(self.factor())
        if joiner == "AND":
            return reduce(lambda a, b: lambda r: a(r) and b(r), parts)
        return reduce(lambda a, b: lambda r: a(r) or b(r), parts)

    def factor(self) -> Predicate:
        if self.tok.upper == "NOT":
            self.take()
            inner = self.factor()
            return lambda r: not inner(r)
        if self.tok.text == "(":
            self.take()
            inner = self.condition()
            if self.tok.text != ")":
                raise self.unexpected()
            self.take()
            return inner
        ft = self.take()
        name = self.field(ft)
        ftype = self.types[name]
        kind = category(ftype)
        norm = norm_for(kind)
        t = self.tok
        if t.kind == "op":
            self.take()
            return compare(name, t.text, self.value(name, ftype), norm)
        negate = False
        if t.upper == "NOT" and self.toks[self.i + 1].upper == "IN":
            self.take()
            negate = True
        if self.tok.upper == "IN":
            self.take()
            values = self.value_list(name, ftype)
            wanted = {None if v is None else norm(v) for v in values}

            def pred_in(r: dict[str, Any]) -> bool:
                v = r.get(name)
                return (None if v is None else norm(v)) in wanted
            return (lambda r: not pred_in(r)) if negate else pred_in
        if self.tok.upper == "LIKE" and not negate:
            self.take()
            pt = self.take()
            if pt.kind != "str":
                raise self.unexpected(pt)
            rx = like(unquote(pt.text))
            return lambda r: (v := r.get(name)) is not None and rx.fullmatch(str(v)) is not None
        raise self.unexpected()

    def value_list(self, name: str, ftype: str) -> list[Any]:
        if self.take().text != "(":
            raise self.unexpected(self.toks[self.i - 1])
        values = [self.value(name, ftype)]
        while self.tok.text == ",":
            self.take()
            values.append(self.value(name, ftype))
        if self.tok.text != ")":
            raise self.unexpected()
        self.take()
        return values

    def value(self, name: str, ftype: str) -> Any:
        t = self.take()
        kind = category(ftype)
        if t.upper == "NULL":
            return None
        ok = {"str": kind in ("text", "id"), "num": kind == "number", "datetime": kind == "datetime",
              "date": kind == "date"}
        if t.kind in ok:
            if not ok[t.kind]:
                raise self._type_error(t, name, kind)
            if t.kind == "str":
                return unquote(t.text).replace("\\_", "_").replace("\\%", "%")
            if t.kind == "num":
                return float(t.text) if "." in t.text else int(t.text)
            if t.kind == "datetime":
                return parse_datetime(t.text)
            return date.fromisoformat(t.text)
        if t.upper in ("TRUE", "FALSE"):
            if kind != "boolean":
                raise self._type_error(t, name, kind)
            return t.upper == "TRUE"
        m = RELATIVE.match(t.text) if t.kind == "ident" else None
        if m is not None:
            if kind not in ("date", "datetime"):
                raise self._type_error(t, name, kind)
            return relative(m, self.now, kind)
        raise self.unexpected(t)

    def _type_error(self, t: Token, name: str, kind: str) -> SoqlError:
        if kind in ("text", "id"):
            reason = f"value of filter criterion for field '{name}' must be of type string and should be enclosed in quotes"
        else:
            reason = (f"value of filter criterion for field '{name}' must be of type {_WIRE_TYPE[kind]} "
                      "and should not be enclosed in quotes")
        return error("INVALID_FIELD", self.soql, t.pos, reason)


