"""Line numbers for values in a TOML document.

``tomllib`` parses without positions, so validation errors would not say where to look. This
scans the text once and maps each key path (``("reps", 2, "max_open")``) to the line where it
is written: the line of a ``[table]`` / ``[[array]]`` header or of a ``key = value``.
It understands what routing files use (tables, arrays of tables, dotted and quoted keys,
multi-line arrays and strings); for anything else it falls back to the enclosing table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_key(dotted: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def key_lines(text: str) -> dict[Path, int]:
    """Map every table header and key in ``text`` to its 1-based line number."""
    lines: dict[Path, int] = {}
    counters: dict[tuple[str, ...], int] = {}
    table: Path = ()
    depth = 0  # open brackets/braces of a value spanning several lines
    in_string: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if in_string in raw:
                in_string = None
            continue
        if depth == 0:
            header = _HEADER.match(raw)
            if header:
                names = tuple(_split_key(header.group(2)))
                if header.group(1) == "[[":
                    index = counters.get(names, 0)
                    counters[names] = index + 1
                    table = (*names, index)
                else:
                    table = names
                lines.setdefault(table, number)
                continue
            key = _KEY.match(raw)
            if key:
                lines.setdefault((*table, *_split_key(key.group(1))), number)
                value = raw[key.end() :]
                for quote in ('"""', "'''"):
                    if value.count(quote) == 1:
                        in_string = quote
        depth += _bracket_balance(raw if depth else raw[raw.find("=") + 1 :])
        depth = max(depth, 0)
    return lines


def _bracket_balance(fragment: str) -> int:
    """Opening minus closing brackets outside strings and comments."""
    balance = 0
    quote: str | None = None
    for char in fragment:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            balance += 1
        elif char in "]}":
            balance -= 1
    return balance


def line_of(lines: dict[Path, int], loc: Sequence[str | int]) -> int | None:
    """The line of the longest prefix of ``loc`` written in the document (None: not found)."""
    for end in range(len(loc), 0, -1):
        found = lines.get(tuple(loc[:end]))
        if found is not None:
            return found
    return None
