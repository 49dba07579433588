"""The routing file: the documented example is valid, errors point at file:line with an example,
and the validated file becomes the router's rep configurations."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from connectors.records import Rep
from sync.config.routing import (
    RoutingError,
    fallback_owner,
    load_routing,
    parse_routing,
    rep_configs,
    unresolved_fallback,
    unresolved_reps,
)
from sync.config.toml_lines import key_lines

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "routing.example.toml"
CRM_REPS = [
    Rep("0055g00000A1AAA", "Ana Weber", "ana@acme.com"),
    Rep("0055g00000A1BBB", "Ben Ortiz", "Ben.Ortiz@acme.com"),
    Rep("0055g00000A1CCC", "Chloe Martin", "chloe@acme.com"),
    Rep("0055g00000A1DDD", "Dev Patel", "dev@acme.com"),
    Rep("0055g00000A1EEE", "Eve Unlisted", "eve@acme.com"),
    Rep("0055g00000A1FFF", "Former Rep", "former@acme.com", active=False),
    Rep("00G5g000001QueueA", "Inbound queue", None, is_queue=True),
]


def _problems(text: str) -> list[str]:
    with pytest.raises(RoutingError) as info:
        parse_routing(text, "routing.toml")
    return info.value.problems


def _example_with(old: str, new: str) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new, 1)


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_given_the_documented_example_then_it_is_valid() -> None:
    config = load_routing(EXAMPLE)
    assert [r.key for r in config.reps] == [
        "0055g00000A1AAA",
        "ben.ortiz@acme.com",
        "0055g00000A1CCC",
        "0055g00000A1DDD",
    ]
    assert config.reps[0].out_of_office == ((date(2026, 12, 24), date(2027, 1, 2)), (date(2026, 8, 14),) * 2)
    assert set(config.territories) == {"dach", "enterprise", "us-smb", "us-west", "apac"}
    assert [r.name for r in config.rules] == ["enterprise leads go to the enterprise team", "APAC to Chloe",
                                              "web leads from North America to Ben"]


def test_given_the_example_and_crm_users_then_rep_configs_resolve_ids_emails_and_defaults() -> None:
    from allocation import Territory, TerritoryRule

    reps = {r.id: r for r in rep_configs(load_routing(EXAMPLE), CRM_REPS)}
    # Dev is listed but inactive in the file; Eve is unlisted (ignored); the queue is never a rep.
    assert sorted(reps) == ["0055g00000A1AAA", "0055g00000A1BBB", "0055g00000A1CCC"]
    ana, ben, chloe = reps["0055g00000A1AAA"], reps["0055g00000A1BBB"], reps["0055g00000A1CCC"]
    assert (ana.max_open, ana.max_per_day, ana.timezone, ana.working_hours) == (
        40,
        15,
        "Europe/Berlin",
        ("09:00", "17:30"),
    )
    assert ana.territories == (
        Territory("dach", (TerritoryRule(field="country", values=("Germany", "Austria", "CH")),)),
        Territory("enterprise", (TerritoryRule(field="employees", min=1000.0),)),
    )
    assert ana.teams == ("enterprise",)
    assert (ben.timezone, ben.working_hours, ben.weight) == ("America/New_York", ("08:30", "17:00"), 1.5)
    assert [t.name for t in ben.territories] == ["us-smb", "us-west"]
    assert TerritoryRule(field="employees", min=1.0, max=999.0) in ben.territories[0].rules
    assert chloe.working_days == ("mon", "tue", "wed", "thu") and chloe.max_per_day == 5


def test_given_unlisted_reps_included_then_active_crm_users_get_the_defaults() -> None:
    text = _example_with('unlisted_reps = "ignore"', 'unlisted_reps = "include"')
    reps = {r.id: r for r in rep_configs(parse_routing(text), CRM_REPS, exclude={"0055g00000A1CCC"})}
    assert sorted(reps) == ["0055g00000A1AAA", "0055g00000A1BBB", "0055g00000A1EEE"]
    assert (reps["0055g00000A1EEE"].max_open, reps["0055g00000A1EEE"].territories) == (50, ())


def test_given_listed_reps_the_crm_lacks_then_they_are_reported() -> None:
    config = load_routing(EXAMPLE)
    assert unresolved_reps(config, CRM_REPS[2:]) == [
        "rep '0055g00000A1AAA' is not a CRM user",
        "rep 'ben.ortiz@acme.com' is not a CRM user",
    ]


def test_given_a_fallback_by_an_email_no_active_user_has_then_it_is_reported() -> None:
    assert unresolved_fallback(parse_routing('[fallback]\nowner = "ANA@acme.com"\n'), CRM_REPS) is None
    assert unresolved_fallback(parse_routing('[fallback]\nowner = "queue@acme.com"\n'), CRM_REPS) == (
        "the fallback owner 'queue@acme.com' is not a CRM user")
    inactive = [replace(r, active=False) if r.email == "ana@acme.com" else r for r in CRM_REPS]
    assert unresolved_fallback(parse_routing('[fallback]\nowner = "ana@acme.com"\n'), inactive) == (
        "the fallback owner 'ana@acme.com' is inactive in the CRM")
    # an id is the CRM preflight's to look up; no fallback at all is a choice
    assert unresolved_fallback(load_routing(EXAMPLE), ()) is None
    assert unresolved_fallback(parse_routing(""), ()) is None


def test_given_a_fallback_by_email_then_it_resolves_to_the_owner_id() -> None:
    config = parse_routing('[fallback]\nowner = "ANA@acme.com"\n')
    assert fallback_owner(config, CRM_REPS) == "0055g00000A1AAA"
    assert fallback_owner(load_routing(EXAMPLE)) == "00G5g000001QueueA"
    assert fallback_owner(parse_routing("")) is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "max_open = 40",
            "max_open = -3",
            "reps[0].max_open: Input should be greater than or equal to 0; e.g. max_open = 40",
        ),
        (
            'timezone = "America/New_York"',
            'timezone = "America/NewYork"',
            "reps[1].timezone: 'America/NewYork' is not an IANA time zone; e.g. timezone = \"Europe/Berlin\"",
        ),
        ("weight = 1.5", "wieght = 1.5", "reps[1].wieght: unknown key 'wieght'; did you mean 'weight'?"),
        (
            'territories = ["us-smb", "us-west"]',
            'territories = ["us-smb", "us"]',
            "reps[1].territories: unknown territory 'us' (known: apac, dach, enterprise, us-smb, us-west)",
        ),
        (
            'country = ["Germany", "Austria", "CH"]',
            'country = ["Germny", "Austria", "CH"]',
            "territories.dach.country: unknown country 'Germny'; did you mean 'Germany'? use a country name or ISO code",
        ),
        (
            'state = ["California", "WA", "Oregon"]',
            'state = ["California", "WA", "Oregan"]',
            "territories.us-west.state: unknown state/province 'Oregan' in US; use its name or ISO 3166-2 code",
        ),
        (
            'territory = "apac"',
            'territory = "asia"',
            "rules[1].territory: unknown territory 'asia' (known: apac, dach, enterprise, us-smb, us-west)",
        ),
        (
            'reps = ["ben.ortiz@acme.com"]',
            'reps = ["ben.ortis@acme.com"]',
            "rules[2].reps: unknown rep 'ben.ortis@acme.com': a rule names reps listed under [[reps]] by id or email; "
            "did you mean 'ben.ortiz@acme.com'?",
        ),
        (
            'teams = ["enterprise"]\n\n[[rules]]',
            'teams = ["enterprize"]\n\n[[rules]]',
            "rules[0].teams: unknown team 'enterprize' (teams of the reps: enterprise)",
        ),
        (
            'reps = ["0055g00000A1CCC"]',
            'reps = []',
            "rules[1]: a rule needs reps or teams to send its leads to",
        ),
        ('"2026-08-14"', '"2026-08-34"', "reps[0].out_of_office: '2026-08-34' is not a date YYYY-MM-DD"),
        (
            'working_hours = "08:30-17:00"',
            'working_hours = "17:00-08:30"',
            "reps[1].working_hours: '17:00-08:30' is not a daytime span",
        ),
        (
            '"mon", "tue", "wed", "thu"]',
            '"mon", "tue", "wed", "thur"]',
            "reps[2].working_days[3]: Input should be 'mon'",
        ),
        (
            "employees = { min = 1000 }",
            "employees = { min = 1000, max = 10 }",
            "territories.enterprise.employees: min 1000 is above max 10",
        ),
        (
            'country = ["Germany", "Austria", "CH"]',
            'contry = ["Germany", "Austria", "CH"]',
            "territories.dach.contry: unknown key 'contry'; did you mean 'country'?",
        ),
        (
            'unlisted_reps = "ignore"',
            'unlisted_reps = "skip"',
            "unlisted_reps: Input should be 'ignore' or 'include'; e.g. unlisted_reps = \"ignore\"",
        ),
        (
            'id = "0055g00000A1DDD"',
            'id = "0055g00000A1AAA"',
            "reps[3]: rep '0055g00000A1AAA' is listed twice (also reps[0])",
        ),
    ],
)
def test_given_one_invalid_value_then_one_problem_at_its_line_with_a_valid_example(
    old: str, new: str, expected: str
) -> None:
    text = _example_with(old, new)
    (problem,) = _problems(text)
    # a duplicate is reported at its [[reps]] header, two lines above Chloe's name
    line = _line(text, 'name = "Dev Patel"') - 2 if "listed twice" in expected else _line(text, new.split("\n")[0])
    if "needs reps or teams" in expected:  # about the whole rule: its [[rules]] header
        line = _line(text, 'name = "APAC to Chloe"') - 1
    assert problem.startswith(f"routing.toml:{line}: {expected}")
    assert "; e.g. " in problem or "listed twice" in problem or "unknown territory" in problem or "unknown team" in problem


def test_given_several_problems_then_all_are_reported_in_file_order() -> None:
    text = _example_with("max_open = 40", "max_open = -3")
    text = text.replace("max_per_day = 5", 'max_per_day = "many"').replace(
        "max_open = 50 ", "max_open = 1.5 "
    )
    lines = [int(p.split(":")[1]) for p in _problems(text)]
    assert len(lines) == 3 and lines == sorted(lines)


def test_given_a_rep_without_id_or_email_then_the_problem_points_at_its_header() -> None:
    (problem,) = _problems('unlisted_reps = "ignore"\n\n[[reps]]\nname = "Nobody"\n')
    assert problem.startswith("routing.toml:3: reps[0]: a rep needs an id (CRM owner id) or an email")


def test_given_broken_toml_then_the_line_of_the_syntax_error() -> None:
    (problem,) = _problems('[defaults]\nmax_open = 40\n[[reps]\nid = "x"\n')
    assert problem.startswith("routing.toml:3: not valid TOML:") and "; e.g. max_open = 40" in problem


def test_given_a_missing_file_then_a_routing_error_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(
        RoutingError, match=r"routing.toml:1: cannot read the routing file .*cp deploy/routing.example.toml"
    ):
        load_routing(tmp_path / "routing.toml")


def test_key_lines_maps_tables_arrays_of_tables_dotted_keys_and_skips_multiline_values() -> None:
    text = "\n".join(
        [
            "top = 1",  # 1
            "[a]",  # 2
            "x = [",  # 3
            "  'y = 2',",  # 4: inside an array, not a key
            "]",  # 5
            "b.c = 3",  # 6
            "[[reps]]",  # 7
            "id = 'r1'",  # 8
            "[[reps]]  # second",  # 9
            'notes = """',  # 10
            "z = 4",  # 11: inside a string
            '"""',  # 12
            "id = 'r2'",  # 13
            '[territories."us-smb"]',  # 14
            "country = ['US']",  # 15
        ]
    )
    lines = key_lines(text)
    assert lines[("top",)] == 1 and lines[("a",)] == 2 and lines[("a", "x")] == 3
    assert ("a", "y") not in lines and ("reps", 1, "z") not in lines
    assert lines[("a", "b", "c")] == 6
    assert (lines[("reps", 0)], lines[("reps", 0, "id")]) == (7, 8)
    assert (lines[("reps", 1)], lines[("reps", 1, "id")]) == (9, 13)
    assert lines[("territories", "us-smb", "country")] == 15


def test_given_the_examples_rules_then_they_name_routed_reps_by_id_email_and_team_in_file_order() -> None:
    from allocation import TerritoryRule
    from sync.config.routing import assignment_rules

    config = load_routing(EXAMPLE)
    routed = rep_configs(config, CRM_REPS)
    rules = assignment_rules(config, CRM_REPS, routed)
    assert [(r.number, r.name) for r in rules] == [(1, "enterprise leads go to the enterprise team"),
                                                   (2, "APAC to Chloe"), (3, "web leads from North America to Ben")]
    assert rules[0].reps == {"0055g00000A1AAA", "0055g00000A1CCC"}  # the team "enterprise"
    assert rules[0].when == (TerritoryRule("employees", min=1000.0),)  # the named territory's predicates
    assert rules[1].reps == {"0055g00000A1CCC"} and rules[2].reps == {"0055g00000A1BBB"}  # by id, by email
    assert rules[1].matches({"country": "jp"}) and not rules[1].matches({"country": "Germany"})
    assert rules[2].matches({"country": "United States", "source": "web"})


def test_given_custom_crm_field_predicates_then_they_become_rules_on_those_fields() -> None:
    from allocation import TerritoryRule

    text = '[territories.south]\nfields = { Region__c = ["South"], Rating__c = { min = 3 } }\n\n[[reps]]\nid = "0055g00000A1AAA"\nterritory = "south"\n'
    (rep,) = rep_configs(parse_routing(text), CRM_REPS)
    assert rep.territories[0].rules == (TerritoryRule("Rating__c", min=3.0), TerritoryRule("Region__c", values=("South",)))
    assert rep.territories[0].mismatch({"Region__c": "south", "Rating__c": 4}) is None
    assert rep.territories[0].mismatch({"Region__c": "North", "Rating__c": 4}) == "Region__c North not in (South)"
