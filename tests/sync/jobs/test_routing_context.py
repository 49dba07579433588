"""What the routing policy sees of a lead: configured fields, derived size band and region, the score."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from connectors.records import Lead
from scoring.types import Score
from sync.config.settings import RoutingSettings
from sync.jobs.lead_context import region, routing_context, size_band

LEAD = Lead(id="L1", created_at=None, modified_at=datetime(2026, 1, 5, tzinfo=UTC), owner_id=None, title="CTO",
            company="Acme", industry="Finance", employees=250.0, revenue=None, country="Germany",
            source="Web", status="Open - Not Contacted", text="hello")
SCORE = Score(probability=0.3, score=30, grade="B", opportunity=False, reasons="", model_version="v1")


@pytest.mark.parametrize(("country", "expected"), [
    ("Germany", "EMEA"), ("  germany ", "EMEA"), ("DE", "EMEA"), ("United States", "Americas"), ("us", "Americas"),
    ("China", "APAC"), ("中国", "APAC"), ("Atlantis", None), ("", None), (None, None),
])
def test_given_a_country_when_regioned_then_americas_emea_apac_or_none(country: str | None, expected: str | None) -> None:
    assert region(country) == expected


def test_given_default_fields_when_building_the_context_then_only_those_and_the_score() -> None:
    ctx = routing_context(LEAD, SCORE, RoutingSettings().context_fields)
    assert ctx == {"size_band": "MidMarket", "region": "EMEA", "industry": "Finance", "score": 0.3}


def test_given_no_field_list_when_building_the_context_then_every_known_attribute_without_text_or_nulls() -> None:
    ctx = routing_context(LEAD, None)
    assert ctx["country"] == "Germany" and ctx["region"] == "EMEA" and ctx["size_band"] == "MidMarket"
    assert "text" not in ctx and "revenue" not in ctx and "score" not in ctx


def test_given_an_unknown_context_field_when_configured_then_the_error_lists_valid_ones() -> None:
    with pytest.raises(ValidationError, match="unknown routing context field.*'segment'.*size_band"):
        RoutingSettings(context_fields=("segment",))


@pytest.mark.parametrize(("employees", "band"), [
    (None, None), (float("nan"), None), (-1.0, None), (0.0, "SMB"), (99.0, "SMB"), (100.0, "MidMarket"),
    (999.0, "MidMarket"), (1000.0, "Enterprise"), (250_000.0, "Enterprise"),
])
def test_given_head_count_when_banding_for_routing_then_smb_midmarket_enterprise(employees: float | None,
                                                                                 band: str | None) -> None:
    assert size_band(employees) == band


def test_given_a_pulled_record_when_territories_read_the_lead_then_its_own_fields_state_and_custom_fields() -> None:
    from dataclasses import replace

    from sync.jobs.lead_context import lead_attributes

    lead = replace(LEAD, raw={"State": "Bayern", "Region__c": "South", "Rating__c": 4, "Nested": {"x": 1}, "Email": None})
    attrs = lead_attributes(lead)
    # what the policy sees (size_band, region) plays no part; the lead's own fields do
    assert attrs["country"] == "Germany" and attrs["employees"] == 250.0 and attrs["title"] == "CTO"
    assert attrs["state"] == "Bayern" and attrs["Region__c"] == "South" and attrs["Rating__c"] == 4
    assert "Nested" not in attrs and "Email" not in attrs and "text" not in attrs and "revenue" not in attrs
    assert "size_band" not in attrs and "region" not in attrs
