"""Who may get a lead at all: rep configuration and the checks made before any policy runs.

Every check returns a reason in words (``None`` when the rep passes) so each decision can say
why a rep was left out: an assignment rule, territory, capacity, daily cap, working hours, out
of office. Territories and rules read the lead's own attributes (title, company, country,
state, employees, … and any CRM field the connector pulled), never the policy's context:
what the policy learns from must not decide who may get a lead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from allocation import places

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d")


def parse_working_hours(span: str | Sequence[str]) -> tuple[time, time]:
    """``"HH:MM-HH:MM"`` (or a ``(start, end)`` pair of ``"HH:MM"``) as local start and end times.

    A span runs within one day, start before end (a night shift is not supported); anything
    else raises ``ValueError`` with one message that shows the span and the expected form.
    """
    text = span if isinstance(span, str) else "-".join(str(t) for t in span)
    if not _HOURS.fullmatch(text) or text[:5] >= text[6:]:
        raise ValueError(f"{text!r} is not a daytime span HH:MM-HH:MM with start before end")
    return time.fromisoformat(text[:5]), time.fromisoformat(text[6:])


# Attributes compared as places (ISO codes), not as text.
PLACE_FIELDS = ("country", "state")


@dataclass(frozen=True)
class TerritoryRule:
    """One predicate over a lead attribute, read from the lead itself (``Router.assign``'s ``attrs``).

    ``values``: the attribute must equal one of them (case-insensitive; a ``country`` by name or
    ISO code, a ``state`` by name or ISO 3166-2 code, see ``allocation.places``); ``min``/``max``:
    a numeric attribute must lie in [min, max]. A lead without the attribute does not match.
    """

    field: str
    values: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    _keys: frozenset[str] = dataclass_field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.values is None and self.min is None and self.max is None:
            raise ValueError(f"territory rule on {self.field!r} needs values or a min/max range")
        if self.values is not None:
            object.__setattr__(self, "values", tuple(str(v) for v in self.values))
            keys: set[str] = set()
            for v in self.values:
                keys.update(_keys(self.field, v, None))
            object.__setattr__(self, "_keys", frozenset(keys))

    def mismatch(self, lead: Mapping[str, Any]) -> str | None:
        """Why the lead falls outside this rule, or None if it matches."""
        value = lead.get(self.field)
        if value is None or value == "":
            return f"lead has no {self.field}"
        if self.values is not None:
            country = lead.get("country") if self.field == "state" else None
            countries = frozenset({c}) if isinstance(country, str) and (c := places.country_code(country)) else None
            if not _keys(self.field, str(value), countries) & self._keys:
                return f"{self.field} {value} not in ({', '.join(self.values)})"
        if self.min is not None or self.max is not None:
            try:
                number = float(value)
            except (TypeError, ValueError):
                return f"{self.field} {value!r} is not a number"
            lo = -float("inf") if self.min is None else self.min
            hi = float("inf") if self.max is None else self.max
            if not lo <= number <= hi:
                return f"{self.field} {number:g} outside [{_fmt(self.min)}, {_fmt(self.max)}]"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (also the routing-file form)."""
        return {"field": self.field, "values": list(self.values) if self.values else None, "min": self.min, "max": self.max}


def _keys(name: str, value: str, countries: frozenset[str] | None) -> frozenset[str]:
    """What a value compares as: ISO codes for places (plus the text itself), else the text."""
    text = " ".join(value.split()).casefold()
    if name == "country":
        code = places.country_code(value)
        return frozenset({text, code}) if code else frozenset({text})
    if name == "state":
        return frozenset({text}) | places.subdivision_codes(value, countries)
    return frozenset({text})


def _fmt(bound: float | None) -> str:
    return "-" if bound is None else f"{bound:g}"


@dataclass(frozen=True)
class Territory:
    """A named set of predicates; a lead is in it when every predicate matches."""

    name: str
    rules: tuple[TerritoryRule, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(TerritoryRule(**r) if isinstance(r, Mapping) else r for r in self.rules))

    def mismatch(self, lead: Mapping[str, Any]) -> str | None:
        """Why the lead is outside this territory (the first predicate that fails), or None."""
        for rule in self.rules:
            why = rule.mismatch(lead)
            if why:
                return why
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [r.to_dict() for r in self.rules]}


@dataclass(frozen=True)
class AssignmentRule:
    """One ordered assignment rule: leads matching ``when`` (every predicate; none: every lead)
    may go only to ``reps`` (rep ids, teams already resolved). The first matching rule wins,
    as in Salesforce assignment rules; a lead no rule matches may go to any rep."""

    number: int
    name: str
    when: tuple[TerritoryRule, ...]
    reps: frozenset[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", tuple(TerritoryRule(**r) if isinstance(r, Mapping) else r for r in self.when))
        object.__setattr__(self, "reps", frozenset(self.reps))

    def matches(self, lead: Mapping[str, Any]) -> bool:
        return all(rule.mismatch(lead) is None for rule in self.when)

    @property
    def label(self) -> str:
        """``rule 2 ("enterprise to the enterprise team")`` for messages."""
        return f"rule {self.number}" + (f" ({self.name})" if self.name else "")

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "name": self.name, "when": [r.to_dict() for r in self.when], "reps": sorted(self.reps)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AssignmentRule:
        return cls(int(data["number"]), str(data.get("name") or ""), tuple(data.get("when") or ()), frozenset(data.get("reps") or ()))


def first_rule(rules: Sequence[AssignmentRule], lead: Mapping[str, Any]) -> AssignmentRule | None:
    """The first rule (in file order) whose conditions the lead meets, or None."""
    return next((r for r in rules if r.matches(lead)), None)


@dataclass(frozen=True)
class RepConfig:
    """A rep as the router sees it. Only ``id`` is required.

    max_open: open (unclosed) assignments allowed at once; max_per_day: assignments per local
    day; territories: the rep takes a lead in any one of them (none: any lead); teams: names
    assignment rules may use; timezone + working_hours (local "HH:MM" start,
    end) + working_days: when the rep takes leads; out_of_office: inclusive (start, end) local
    date ranges; weight: relative share for round robin and the fairness floor.
    """

    id: str
    max_open: int | None = None
    max_per_day: int | None = None
    territories: tuple[Territory, ...] = ()
    teams: tuple[str, ...] = ()
    timezone: str = "UTC"
    working_hours: tuple[str, str] | None = None
    working_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    out_of_office: tuple[tuple[date, date], ...] = ()
    weight: float = 1.0
    active: bool = True
    _hours: tuple[time, time] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("RepConfig.id must be a non-empty CRM owner id")
        for name in ("max_open", "max_per_day"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"rep {self.id}: {name} must be >= 0, got {value}")
        if self.weight <= 0:
            raise ValueError(f"rep {self.id}: weight must be positive, got {self.weight}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"rep {self.id}: unknown time zone {self.timezone!r}; use an IANA name like 'Europe/Berlin'") from exc
        bad_days = [d for d in self.working_days if d not in WEEKDAYS]
        if bad_days:
            raise ValueError(f"rep {self.id}: working_days {bad_days} are not in {WEEKDAYS}")
        object.__setattr__(self, "territories", tuple(Territory(**t) if isinstance(t, Mapping) else t for t in self.territories))
        object.__setattr__(self, "teams", tuple(self.teams))
        object.__setattr__(self, "out_of_office", tuple((_as_date(a), _as_date(b)) for a, b in self.out_of_office))
        if self.working_hours is not None:
            try:
                object.__setattr__(self, "_hours", parse_working_hours(self.working_hours))
            except ValueError as exc:
                raise ValueError(f"rep {self.id}: working_hours {exc}") from exc

    def local(self, now: datetime) -> datetime:
        """``now`` in the rep's time zone."""
        return now if self.timezone == "UTC" else now.astimezone(ZoneInfo(self.timezone))

    def unavailable(self, now: datetime) -> str | None:
        """Why the rep cannot take a lead at ``now`` (hours, days, out of office), or None."""
        if not self.out_of_office and self._hours is None:
            return None
        local = self.local(now)
        for start, end in self.out_of_office:
            if start <= local.date() <= end:
                return f"out of office {start.isoformat()} to {end.isoformat()}"
        if self._hours is not None:
            day = WEEKDAYS[local.weekday()]
            if day not in self.working_days:
                return f"not a working day ({day} in {self.timezone})"
            start_t, end_t = self._hours
            if not start_t <= local.time() < end_t:
                return f"outside working hours ({local:%H:%M} in {self.timezone}, works {self.working_hours[0]}-{self.working_hours[1]})"  # type: ignore[index]
        return None

    def working_deadline(self, start: datetime, span: timedelta, *, max_days: int = 366) -> datetime | None:
        """When ``span`` of this rep's working time has passed since ``start`` (UTC): only its
        working hours on its working days count, in its time zone; a rep with no hours
        configured works around the clock (``start + span``). Out-of-office days count: an SLA
        keeps running while its rep is away, so an absent rep's leads move on. None when the rep
        works no hour within ``max_days`` (no working days)."""
        if self._hours is None or span <= timedelta(0):
            return start + span
        zone, left = ZoneInfo(self.timezone), span
        day = start.astimezone(zone).date()
        for _ in range(max_days + 1):
            if WEEKDAYS[day.weekday()] in self.working_days:
                # in UTC: a difference between two times in one zone is wall time (wrong across DST)
                opens = max(datetime.combine(day, self._hours[0], zone).astimezone(UTC), start)
                closes = datetime.combine(day, self._hours[1], zone).astimezone(UTC)
                if opens < closes:
                    if closes - opens >= left:
                        return opens + left
                    left -= closes - opens
            day += timedelta(days=1)
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``RepConfig.from_dict`` reads it back (and reads routing files)."""
        return {
            "id": self.id,
            "max_open": self.max_open,
            "max_per_day": self.max_per_day,
            "territories": [t.to_dict() for t in self.territories],
            "teams": list(self.teams),
            "timezone": self.timezone,
            "working_hours": list(self.working_hours) if self.working_hours else None,
            "working_days": list(self.working_days),
            "out_of_office": [[a.isoformat(), b.isoformat()] for a, b in self.out_of_office],
            "weight": self.weight,
            "active": self.active,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RepConfig:
        """Build from a mapping (routing file entry or state); unknown keys are an error."""
        known = {"id", "max_open", "max_per_day", "territories", "teams", "territory", "timezone", "working_hours", "working_days", "out_of_office", "weight", "active"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"rep {data.get('id')!r}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
        kwargs = dict(data)
        territories = [Territory(**t) if isinstance(t, Mapping) else t for t in data.get("territories") or ()]
        legacy = kwargs.pop("territory", None)  # state saved before several territories per rep
        if legacy:
            territories.append(Territory("territory", tuple(legacy)))
        kwargs["territories"] = tuple(territories)
        kwargs["teams"] = tuple(data.get("teams") or ())
        if data.get("working_hours") is not None:
            kwargs["working_hours"] = tuple(data["working_hours"])
        if "working_days" in data:
            kwargs["working_days"] = tuple(str(d).lower()[:3] for d in data["working_days"])
        kwargs["out_of_office"] = tuple(tuple(pair) for pair in data.get("out_of_office") or ())
        return cls(**kwargs)


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(value)


def territory_mismatch(rep: RepConfig, lead: Mapping[str, Any]) -> str | None:
    """Why the lead is in none of the rep's territories (None: in one of them, or the rep has none)."""
    if not rep.territories:
        return None
    misses = []
    for t in rep.territories:
        why = t.mismatch(lead)
        if why is None:
            return None
        misses.append((t.name, why))
    if len(misses) == 1:
        return f"outside territory {misses[0][0]}: {misses[0][1]}"
    return "outside territories: " + "; ".join(f"{name}: {why}" for name, why in misses)


def exclusion_reason(
    rep: RepConfig, lead: Mapping[str, Any], now: datetime, open_count: int, today_count: int,
    rule: AssignmentRule | None = None,
) -> str | None:
    """The first reason this rep cannot take this lead now, or None if eligible.

    ``lead``: the lead's own attributes (territories read them); ``rule``: the assignment rule
    the lead matched, if any. Order matters only for the message: inactive, rule, territory,
    availability, capacity, daily cap.
    """
    if not rep.active:
        return "inactive"
    if rule is not None and rep.id not in rule.reps:
        return f"not eligible under {rule.label}"
    why = territory_mismatch(rep, lead)
    if why:
        return why
    why = rep.unavailable(now)
    if why:
        return why
    if rep.max_open is not None and open_count >= rep.max_open:
        return f"at capacity: {open_count} open of max {rep.max_open}"
    if rep.max_per_day is not None and today_count >= rep.max_per_day:
        return f"daily cap reached: {today_count} today of max {rep.max_per_day}"
    return None


def check_unique(reps: Sequence[RepConfig]) -> None:
    """Refuse duplicate rep ids (a copy-paste in the routing file would double a rep's share)."""
    seen: set[str] = set()
    for rep in reps:
        if rep.id in seen:
            raise ValueError(f"rep id {rep.id!r} appears twice in the rep list; each rep must be listed once")
        seen.add(rep.id)
