"""Territories and ordered assignment rules on the lead's own attributes.

Countries and states compare by name or ISO code in any case (pycountry); a rep may hold
several territories; the first matching rule decides which reps are eligible, and the policy
never chooses outside them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from allocation import AssignmentRule, RepConfig, Router, Territory, TerritoryRule, bare_policy
from allocation.places import country_code, country_suggestion, subdivision_codes

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("written", "code"),
    [("Germany", "DE"), ("germany", "DE"), ("DE", "DE"), ("de", "DE"), ("DEU", "DE"), ("United States", "US"),
     ("USA", "US"), ("UK", "GB"), ("United Kingdom", "GB"), ("China", "CN"), ("  south   korea ", "KR"),
     ("Russia", "RU"), ("Türkiye", "TR"), ("Atlantis", None), ("", None)],
)
def test_given_a_country_as_crms_write_it_when_reduced_then_its_iso_code(written: str, code: str | None) -> None:
    assert country_code(written) == code


def test_given_states_when_reduced_then_iso_3166_2_codes_narrowed_by_country() -> None:
    assert subdivision_codes("California") == {"US-CA"}
    assert subdivision_codes("us-ca") == {"US-CA"}
    assert subdivision_codes("CA", frozenset({"US"})) == {"US-CA"}
    assert "ES-CA" in subdivision_codes("CA")  # ambiguous on its own
    assert subdivision_codes("Ontario") == {"CA-ON"}
    assert subdivision_codes("Nowhere") == frozenset()


def test_given_a_misspelt_country_then_a_suggestion() -> None:
    assert country_suggestion("Germny") == "Germany"


@pytest.mark.parametrize("lead_country", ["Germany", "germany", "DE", "de", "DEU", " Deutschland "])
def test_given_territory_by_iso_code_when_lead_has_country_name_then_it_matches(lead_country: str) -> None:
    rule = TerritoryRule("country", values=("DE", "AT", "CH"))
    assert rule.mismatch({"country": lead_country}) is None


def test_given_territory_by_name_when_lead_has_iso_code_then_it_matches_and_others_do_not() -> None:
    rule = TerritoryRule("country", values=("Germany", "Austria"))
    assert rule.mismatch({"country": "AT"}) is None
    assert rule.mismatch({"country": "China"}) == "country China not in (Germany, Austria)"
    assert rule.mismatch({}) == "lead has no country"


def test_given_state_territory_when_lead_names_state_any_way_then_it_matches_within_its_country() -> None:
    rule = TerritoryRule("state", values=("CA", "New York"))
    assert rule.mismatch({"state": "California", "country": "United States"}) is None
    assert rule.mismatch({"state": "ny", "country": "US"}) is None
    assert rule.mismatch({"state": "Texas", "country": "US"}) == "state Texas not in (CA, New York)"


def _router(reps: list[RepConfig], rules: tuple[AssignmentRule, ...] = ()) -> Router:
    return Router(policy=bare_policy("round_robin"), reps=reps, fallback="queue", rules=rules)


def test_given_rep_with_several_territories_when_lead_in_any_then_eligible() -> None:
    dach = Territory("dach", (TerritoryRule("country", values=("DE", "AT", "CH")),))
    big = Territory("enterprise", (TerritoryRule("employees", min=1000),))
    router = _router([RepConfig(id="ana", territories=(dach, big)), RepConfig(id="ben", territories=(big,))])
    context = {"region": "EMEA"}  # what the policy learns from holds no country
    d = router.assign("L1", context, T0, attrs={"country": "Austria", "employees": 20})
    assert d.rep == "ana"
    assert d.excluded == {"ben": "outside territory enterprise: employees 20 outside [1000, -]"}
    d = router.assign("L2", context, T0, attrs={"country": "China", "employees": 5})
    assert d.rep is None
    assert d.excluded["ana"] == ("outside territories: dach: country China not in (DE, AT, CH); "
                                 "enterprise: employees 5 outside [1000, -]")


def test_given_ordered_rules_when_lead_matches_several_then_first_wins_and_policy_stays_inside() -> None:
    rules = (
        AssignmentRule(1, "enterprise", (TerritoryRule("employees", min=1000),), frozenset({"ent1", "ent2"})),
        AssignmentRule(2, "china desk", (TerritoryRule("country", values=("CN",)),), frozenset({"cn"})),
        AssignmentRule(3, "", (), frozenset({"smb"})),  # a catch-all
    )
    router = _router([RepConfig(id=r) for r in ("ent1", "ent2", "cn", "smb")], rules)
    for i in range(40):
        d = router.assign(f"E{i}", {}, T0, attrs={"country": "China", "employees": 5000})
        assert d.rep in {"ent1", "ent2"} and d.rule == "rule 1 (enterprise)"
        assert d.excluded == {"cn": "not eligible under rule 1 (enterprise)", "smb": "not eligible under rule 1 (enterprise)"}
        assert set(d.probabilities) == {"ent1", "ent2"}
    d = router.assign("C", {}, T0, attrs={"country": "china", "employees": 50})
    assert d.rep == "cn" and d.rule == "rule 2 (china desk)"
    d = router.assign("S", {}, T0, attrs={"country": "France"})
    assert d.rep == "smb" and d.excluded["cn"] == "not eligible under rule 3"


def test_given_rules_and_territories_when_router_state_round_trips_then_both_survive() -> None:
    rules = (AssignmentRule(1, "dach", (TerritoryRule("country", values=("Germany",)),), frozenset({"a"})),)
    reps = [RepConfig(id="a", teams=("emea",), territories=(Territory("t", (TerritoryRule("state", values=("Bayern",)),)),)),
            RepConfig(id="b")]
    router = _router(reps, rules)
    again = Router.from_state(router.to_state())
    assert again.rules == router.rules and again.reps == router.reps
    d = again.assign("L", {}, T0, attrs={"country": "DE", "state": "DE-BY"})
    assert d.rep == "a" and d.excluded == {"b": "not eligible under rule 1 (dach)"}


def test_given_state_saved_with_one_anonymous_territory_when_read_then_it_still_applies() -> None:
    old = {"id": "x", "territory": [{"field": "country", "values": ["US"], "min": None, "max": None}]}
    rep = RepConfig.from_dict(old)
    assert rep.territories == (Territory("territory", (TerritoryRule("country", values=("US",)),)),)
