"""The routing file (``routing.toml``): who may get which leads, how many, and when.

Parsed with ``tomllib`` into validated, frozen models; every problem is reported as
``file:line: what is wrong; e.g. <valid example>``. ``deploy/routing.example.toml`` documents
the format. ``rep_configs`` turns it into ``allocation.RepConfig`` values for the router.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from allocation.constraints import parse_working_hours
from connectors.records import Rep
from sync.config.routing_problems import EXAMPLES, ProblemWriter, cross_checks
from sync.config.toml_lines import key_lines

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class RoutingError(ValueError):
    """The routing file is missing or invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Values = Annotated[tuple[str, ...], BeforeValidator(_listify), Field(min_length=1)]


class Range(_Strict):
    """A numeric range; either bound may be left out."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("a range needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self


def _shape(value: Any) -> str:
    return "range" if isinstance(value, dict | Range) else "values"


# A number attribute takes a range or a list of values; the shape written decides which, so an
# error speaks about that form only.
Numeric = Annotated[Annotated[Range, Tag("range")] | Annotated[Values, Tag("values")], Discriminator(_shape)]


class Territory(_Strict):
    """Predicates over the lead's own attributes; a lead is in the territory when every given one
    matches (a list: the attribute equals one of the values, case-insensitive — a country by name
    or ISO code, a state/province by name or ISO 3166-2 code; a range: lies within it).
    ``fields``: predicates over any other CRM field the connector reads, by its CRM name."""

    title: Values | None = None
    company: Values | None = None
    industry: Values | None = None
    country: Values | None = None
    state: Values | None = None
    source: Values | None = None
    status: Values | None = None
    employees: Numeric | None = None
    revenue: Numeric | None = None
    fields: dict[str, Numeric] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Territory:
        if not self.model_fields_set:
            raise ValueError('a territory needs at least one predicate, e.g. country = ["Germany", "AT"]')
        return self

    @field_validator("country")
    @classmethod
    def _countries(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from allocation.places import country_code, country_suggestion

        for name in v or ():
            if country_code(name) is None:
                close = country_suggestion(name)
                hint = f"did you mean {close!r}? " if close else ""
                raise ValueError(f"unknown country {name!r}; {hint}use a country name or ISO code (\"Germany\" or \"DE\")")
        return v

    @field_validator("state")
    @classmethod
    def _states(cls, v: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        from allocation.places import country_code, subdivision_codes

        countries = frozenset(c for c in (country_code(n) for n in info.data.get("country") or ()) if c) or None
        for name in v or ():
            codes = subdivision_codes(name, countries)
            if not codes:
                where = f" in {', '.join(sorted(countries))}" if countries else ""
                raise ValueError(f"unknown state/province {name!r}{where}; use its name or ISO 3166-2 code "
                                 f"(\"California\" or \"US-CA\")")
            if len(codes) > 1:
                raise ValueError(f"state {name!r} could be any of {', '.join(sorted(codes)[:6])}; write the "
                                 f"full code (e.g. {sorted(codes)[0]!r}) or add the country to this territory")
        return v


class _Availability(_Strict):
    max_open: int | None = Field(default=None, ge=0)
    max_per_day: int | None = Field(default=None, ge=0)
    timezone: str | None = None
    working_hours: str | None = None
    working_days: tuple[Weekday, ...] | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"{v!r} is not an IANA time zone") from exc
        return v

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        if v is not None:
            parse_working_hours(v)  # its ValueError says what a valid span looks like
        return v


class Defaults(_Availability):
    """Applied to every rep that does not say otherwise."""

    timezone: str | None = "UTC"
    working_days: tuple[Weekday, ...] | None = ("mon", "tue", "wed", "thu", "fri")


class RepEntry(_Availability):
    """A rep, found in the CRM by owner ``id`` or by ``email``."""

    id: str | None = None
    email: str | None = None
    name: str | None = None
    territory: str | None = None  # one territory, or:
    territories: tuple[str, ...] = ()  # several: the rep takes a lead in any of them
    teams: tuple[str, ...] = ()  # team names assignment rules may use
    out_of_office: tuple[tuple[date, date], ...] = ()
    weight: float = Field(default=1.0, gt=0)
    active: bool = True

    @field_validator("out_of_office", mode="before")
    @classmethod
    def _dates(cls, v: Any) -> Any:
        return [_date_range(item) for item in _listify(v)] if isinstance(v, list | str) else v

    @model_validator(mode="after")
    def _identified(self) -> RepEntry:
        if not (self.id or self.email):
            raise ValueError("a rep needs an id (CRM owner id) or an email")
        return self

    @property
    def key(self) -> str:
        """How the file names this rep (id, else email)."""
        return self.id or str(self.email)


def _date_range(item: Any) -> Any:
    """``2026-12-24``, ``"2026-12-24"`` or ``"2026-12-24..2027-01-02"`` -> (first, last) day."""
    if isinstance(item, date):
        return (item, item)
    if isinstance(item, str):
        first, _, last = item.partition("..")
        try:
            start = date.fromisoformat(first.strip())
            end = date.fromisoformat(last.strip()) if last else start
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD") from exc
        if end < start:
            raise ValueError(f"{item!r} ends before it starts")
        return (start, end)
    return item


class Rule(_Strict):
    """An assignment rule: which reps (or teams) may get the leads it matches. Rules are tried
    in file order and the first match wins; a lead no rule matches may go to any rep."""

    name: str | None = None
    when: Territory | None = None  # predicates (as in a territory); none: every lead
    territory: str | None = None  # or/and: the leads of a named territory
    reps: tuple[str, ...] = ()  # rep ids or emails, as under [[reps]]
    teams: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _names_someone(self) -> Rule:
        if not (self.reps or self.teams):
            raise ValueError("a rule needs reps or teams to send its leads to")
        return self


class Fallback(_Strict):
    """Who gets a lead no rep can take (a queue or a user; id or email). None: leave the owner."""

    owner: str | None = None


class RoutingConfig(_Strict):
    """The whole routing file."""

    # CRM users active in the CRM but not listed under [[reps]]: never route to them, or route
    # to them with the [defaults].
    unlisted_reps: Literal["ignore", "include"] = "ignore"
    fallback: Fallback = Field(default_factory=Fallback)
    defaults: Defaults = Field(default_factory=Defaults)
    territories: dict[str, Territory] = Field(default_factory=dict)
    reps: tuple[RepEntry, ...] = ()
    rules: tuple[Rule, ...] = ()


_SECTIONS: dict[str, type[BaseModel]] = {
    "reps": RepEntry,
    "territories": Territory,
    "defaults": Defaults,
    "fallback": Fallback,
    "rules": Rule,
    "when": Territory,
}


def parse_routing(text: str, filename: str = "routing.toml") -> RoutingConfig:
    """Parse and validate routing-file text; raises ``RoutingError`` listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = where.group(1) if where else "1"
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise RoutingError(
            [f"{filename}:{line}: not valid TOML: {what}; e.g. {EXAMPLES['max_open']}"]
        ) from exc
    describe = ProblemWriter(filename, key_lines(text), RoutingConfig, _SECTIONS, Territory.model_fields)
    problems = [describe(loc, msg, "reference") for loc, msg in cross_checks(raw)]
    try:
        config = RoutingConfig.model_validate(raw)
    except ValidationError as exc:
        problems += [describe(tuple(e["loc"]), str(e["msg"]), e["type"]) for e in exc.errors()]
    if problems:
        # In file order, so that an admin can fix them top to bottom.
        raise RoutingError([text for _, text in sorted(problems, key=lambda p: p[0])])
    return config


def load_routing(path: str | Path) -> RoutingConfig:
    """Read and validate the routing file at ``path``; raises ``RoutingError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingError(
            [
                f"{path}:1: cannot read the routing file ({exc.strerror}); e.g. cp deploy/routing.example.toml {path}"
            ]
        ) from exc
    return parse_routing(text, str(path))


# ---------------------------------------------------------------- to the router
def _resolve(entry: RepEntry, by_id: dict[str, Rep], by_email: dict[str, Rep]) -> Rep | None:
    if entry.id is not None:
        return by_id.get(entry.id)
    return by_email.get((entry.email or "").lower())


def rep_configs(config: RoutingConfig, crm_reps: Sequence[Rep], exclude: Collection[str] = ()) -> list[Any]:
    """``allocation.RepConfig`` for every routable rep: listed reps found active in the CRM, plus
    (``unlisted_reps = "include"``) every other active, non-queue CRM user with the defaults.
    ``exclude``: owner ids never routed to (e.g. the integration user)."""
    from allocation import RepConfig, Territory, TerritoryRule

    by_id = {r.id: r for r in crm_reps}
    by_email = {r.email.lower(): r for r in crm_reps if r.email}
    d = config.defaults
    out: list[Any] = []
    listed: set[str] = set()
    for entry in config.reps:
        rep = _resolve(entry, by_id, by_email)
        if rep is None:
            continue
        listed.add(rep.id)
        if not (entry.active and rep.active) or rep.id in exclude:
            continue
        names = ([entry.territory] if entry.territory else []) + [t for t in entry.territories if t != entry.territory]
        hours = entry.working_hours or d.working_hours
        out.append(
            RepConfig(
                id=rep.id,
                max_open=entry.max_open if entry.max_open is not None else d.max_open,
                max_per_day=entry.max_per_day if entry.max_per_day is not None else d.max_per_day,
                territories=tuple(Territory(n, tuple(_rules(config.territories[n], TerritoryRule)))
                                  for n in names if n in config.territories),
                teams=entry.teams,
                timezone=entry.timezone or d.timezone or "UTC",
                working_hours=(hours[:5], hours[6:]) if hours else None,
                working_days=entry.working_days or d.working_days or ("mon", "tue", "wed", "thu", "fri"),
                out_of_office=entry.out_of_office,
                weight=entry.weight,
            )
        )
    if config.unlisted_reps == "include":
        for rep in crm_reps:
            if rep.id not in listed and rep.active and not rep.is_queue and rep.id not in exclude:
                out.append(rep_configs(RoutingConfig(defaults=d, reps=(RepEntry(id=rep.id),)), [rep])[0])
    return out


def _rules(territory: Territory, rule: Any) -> list[Any]:
    """``allocation.TerritoryRule`` values for a territory's predicates (CRM fields by their name)."""
    out = []
    named: list[tuple[str, Any]] = [(n, getattr(territory, n)) for n in sorted(territory.model_fields_set) if n != "fields"]
    named += sorted((territory.fields or {}).items())
    for name, value in named:
        if isinstance(value, Range):
            out.append(rule(field=name, min=value.min, max=value.max))
        elif value is not None:
            out.append(rule(field=name, values=tuple(value)))
    return out


def assignment_rules(config: RoutingConfig, crm_reps: Sequence[Rep], routed: Sequence[Any]) -> list[Any]:
    """``allocation.AssignmentRule`` for each ``[[rules]]`` entry, numbered from 1 in file order,
    naming the routed reps (``rep_configs``) it allows: those listed by id or email and every
    member of its teams. A rule whose reps are all inactive leaves its leads to the fallback."""
    from allocation import AssignmentRule, TerritoryRule

    by_id = {r.id: r for r in crm_reps}
    by_email = {r.email.lower(): r for r in crm_reps if r.email}
    routed_ids = {r.id for r in routed}
    team_of: dict[str, set[str]] = {}
    for entry in config.reps:
        rep = _resolve(entry, by_id, by_email)
        for team in entry.teams:
            if rep is not None:
                team_of.setdefault(team, set()).add(rep.id)
    out = []
    for number, rule in enumerate(config.rules, start=1):
        ids: set[str] = set()
        for key in rule.reps:
            rep = by_id.get(key) or by_email.get(key.lower())
            if rep is not None:
                ids.add(rep.id)
        for team in rule.teams:
            ids |= team_of.get(team, set())
        when = _rules(rule.when, TerritoryRule) if rule.when else []
        if rule.territory and rule.territory in config.territories:
            when += _rules(config.territories[rule.territory], TerritoryRule)
        out.append(AssignmentRule(number, rule.name or "", tuple(when), frozenset(ids & routed_ids)))
    return out


def unresolved_reps(config: RoutingConfig, crm_reps: Sequence[Rep]) -> list[str]:
    """Listed reps the CRM does not know or has deactivated (for ``leadpilot check``/``status``)."""
    by_id = {r.id: r for r in crm_reps}
    by_email = {r.email.lower(): r for r in crm_reps if r.email}
    out = []
    for entry in config.reps:
        rep = _resolve(entry, by_id, by_email)
        if rep is None:
            out.append(f"rep {entry.key!r} is not a CRM user")
        elif not rep.active:
            out.append(f"rep {entry.key!r} is inactive in the CRM")
    return out


def unresolved_fallback(config: RoutingConfig, crm_reps: Sequence[Rep]) -> str | None:
    """What is wrong with a fallback owner named by e-mail, or ``None``.

    An e-mail no active CRM user has resolves to no owner (``fallback_owner``), so the leads no
    rep can take would silently stay with whoever owns them; ``leadpilot check`` fails on it. An
    id is looked up by the CRM's own preflight."""
    owner = config.fallback.owner
    if not owner or "@" not in owner:
        return None
    match = next((r for r in crm_reps if r.email and r.email.lower() == owner.lower()), None)
    if match is None:
        return f"the fallback owner {owner!r} is not a CRM user"
    if not match.active:
        return f"the fallback owner {owner!r} is inactive in the CRM"
    return None


def fallback_owner(config: RoutingConfig, crm_reps: Sequence[Rep] = ()) -> str | None:
    """The owner id for leads no rep can take (an email is resolved through ``crm_reps``)."""
    owner = config.fallback.owner
    if owner and "@" in owner:
        match = next((r.id for r in crm_reps if r.email and r.email.lower() == owner.lower()), None)
        return match
    return owner
