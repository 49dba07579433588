"""Routing-file problems in words: ``file:line: where: what is wrong; e.g. <a valid line>``.

Kept apart from ``sync.config.routing`` (the models) so that both read on their own.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from sync.config.toml_lines import line_of

# A valid line for each key, shown after an error about it.
EXAMPLES: dict[str, str] = {
    "unlisted_reps": 'unlisted_reps = "ignore"',
    "owner": 'owner = "00G5g000001QueueA"',
    "id": 'id = "0055g00000A1AAA"',
    "email": 'email = "ana@acme.com"',
    "name": 'name = "Ana Weber"',
    "territory": 'territory = "dach"',
    "territories": 'territories = ["dach", "enterprise"]',
    "teams": 'teams = ["enterprise"]',
    "country": 'country = ["Germany", "AT", "CH"]',
    "state": 'state = ["California", "US-NY"]',
    "fields": 'fields = { Region__c = ["North"] }',
    "when": 'when = { country = ["China", "JP"] }',
    "rules.reps": 'reps = ["ana@acme.com", "0055g00000A1CCC"]',
    "rules.territory": 'territory = "dach"',
    "rules.name": 'name = "enterprise leads to the enterprise team"',
    "max_open": "max_open = 40",
    "max_per_day": "max_per_day = 10",
    "timezone": 'timezone = "Europe/Berlin"',
    "working_hours": 'working_hours = "09:00-17:30"',
    "working_days": 'working_days = ["mon", "tue", "wed", "thu", "fri"]',
    "out_of_office": 'out_of_office = ["2026-12-24..2027-01-02", "2026-08-14"]',
    "weight": "weight = 1.0",
    "active": "active = true",
    "employees": "employees = { min = 50, max = 1000 }",
    "revenue": "revenue = { min = 1000000 }",
    "min": "employees = { min = 50, max = 1000 }",
    "max": "employees = { min = 50, max = 1000 }",
    "reps": '[[reps]] followed by id = "0055g00000A1AAA"',
    "rules": '[[rules]] followed by when = { country = ["China"] } and teams = ["apac"]',
    "fallback": '[fallback] followed by owner = "00G5g000001QueueA"',
    "defaults": "[defaults] followed by max_open = 50",
}
LIST_EXAMPLE = '{key} = ["value one", "value two"]'


class ProblemWriter:
    """Turns a validation error location into one located line."""

    def __init__(
        self,
        filename: str,
        lines: dict[Any, int],
        root: type[BaseModel],
        sections: Mapping[str, type[BaseModel]],
        list_keys: Collection[str],
    ) -> None:
        self.filename = filename
        self.lines = lines
        self.root = root
        self.sections = sections
        self.list_keys = set(list_keys)
        self.keys = (
            set(EXAMPLES) | set(root.model_fields) | {k for m in sections.values() for k in m.model_fields}
        )

    def __call__(self, loc: tuple[Any, ...], msg: str, kind: str) -> tuple[int, str]:
        """``(line, text)`` for one problem at ``loc``."""
        # Drop pydantic's internal steps (union tags) but keep table names like a territory's.
        last = len(loc) - 1 if kind == "extra_forbidden" else -1  # the unknown key itself
        loc = tuple(p for i, p in enumerate(loc) if isinstance(p, int) or p in self.keys or i in (1, last))
        line = line_of(self.lines, loc) or 1
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "file"
        msg = msg.removeprefix("Value error, ")
        key = next((str(p) for p in reversed(loc) if isinstance(p, str) and p in self.keys), None)
        if kind == "extra_forbidden" and loc:
            choices = (
                sorted(self.sections.get(str(loc[0]), self.root).model_fields)
                if len(loc) > 1
                else sorted(self.root.model_fields)
            )
            close = difflib.get_close_matches(str(loc[-1]), choices, n=1)
            msg = f"unknown key {loc[-1]!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            msg += f" (keys here: {', '.join(choices)})"
            key = close[0] if close else None
        scoped = f"{loc[0]}.{key}" if loc and key else ""
        example = EXAMPLES.get(scoped) or EXAMPLES.get(key or "") or (LIST_EXAMPLE.format(key=key) if key in self.list_keys else None)
        return line, f"{self.filename}:{line}: {where}: {msg}" + (f"; e.g. {example}" if example else "")


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def cross_checks(raw: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """References between sections, checked on the raw document so they show up with the rest:
    territories a rep or rule names, reps and teams a rule names, reps listed twice."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    territories = raw.get("territories")
    names = set(territories) if isinstance(territories, dict) else set()
    known = ", ".join(sorted(names)) or "none defined"
    reps = raw.get("reps")
    seen: dict[str, int] = {}
    teams: set[str] = set()
    for index, rep in enumerate(reps if isinstance(reps, list) else []):
        if not isinstance(rep, dict):
            continue
        for key in ("territory", "territories"):
            for territory in _names(rep.get(key)):
                if territory not in names:
                    out.append((("reps", index, key), f"unknown territory {territory!r} (known: {known})"))
        teams.update(_names(rep.get("teams")))
        for name in (rep.get("id"), str(rep.get("email") or "").lower() or None):
            if isinstance(name, str) and name in seen:
                out.append((("reps", index), f"rep {name!r} is listed twice (also reps[{seen[name]}])"))
            elif isinstance(name, str):
                seen[name] = index
    rules = raw.get("rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        wanted = rule.get("territory")
        if isinstance(wanted, str) and wanted not in names:
            out.append((("rules", index, "territory"), f"unknown territory {wanted!r} (known: {known})"))
        for rep in _names(rule.get("reps")):
            if rep not in seen and rep.lower() not in seen:
                close = difflib.get_close_matches(rep, list(seen), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                out.append((("rules", index, "reps"), f"unknown rep {rep!r}: a rule names reps listed under [[reps]] "
                                                        f"by id or email{hint}"))
        for team in _names(rule.get("teams")):
            if team not in teams:
                listed = ", ".join(sorted(teams)) or "none: give reps teams = [...]"
                out.append((("rules", index, "teams"), f"unknown team {team!r} (teams of the reps: {listed})"))
    return out
