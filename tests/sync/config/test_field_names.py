"""Configured CRM field and property names are identifiers, checked in the settings before any
query is built with them (they go into SOQL's SELECT list and HubSpot's property lists as is)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config.loading import ConfigError, load_checked

INJECTION = "Industry FROM Lead WHERE Name != null --"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LEADPILOT_FIELDS__SCORE", INJECTION, f"LEADPILOT_FIELDS__SCORE: got {INJECTION!r}: not a field name"),
        ("LEADPILOT_FIELDS__OWNER", "OwnerId, Name", "LEADPILOT_FIELDS__OWNER: got 'OwnerId, Name': not a field name"),
        ("LEADPILOT_SALESFORCE__TEXT_FIELDS", f'["Title", "{INJECTION}"]',
         f"LEADPILOT_SALESFORCE__TEXT_FIELDS: got {INJECTION!r}: not a field name (letters, digits and "
         "underscores, starting with a letter) (item 1)"),
        ("LEADPILOT_SALESFORCE__SOURCE_FIELDS", '{"industry": "Industry__c)"}',
         "LEADPILOT_SALESFORCE__SOURCE_FIELDS: got 'Industry__c)': not a field name"),
        ("LEADPILOT_HUBSPOT_PROPERTIES__GRADE", "leadpilot grade", "LEADPILOT_HUBSPOT_PROPERTIES__GRADE: got "
         "'leadpilot grade': not a field name"),
        ("LEADPILOT_HUBSPOT__TEXT_PROPERTIES", '["jobtitle", "1company"]',
         "LEADPILOT_HUBSPOT__TEXT_PROPERTIES: got '1company': not a field name"),
    ],
)
def test_given_a_field_name_that_is_not_an_identifier_then_the_variable_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "salesforce" if "SALESFORCE" in variable or "FIELDS__" in variable
                       else "hubspot")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_checked()
    (line,) = info.value.problems
    assert line.startswith(expected), line
    assert f"; e.g. {variable}=" in line


def test_given_custom_field_names_then_they_are_accepted(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    monkeypatch.setenv("LEADPILOT_FIELDS__SCORE", "Acme_Lead_Score__c")
    monkeypatch.setenv("LEADPILOT_SALESFORCE__SOURCE_FIELDS", '{"industry": "Industry_Segment__c"}')
    monkeypatch.setenv("LEADPILOT_HUBSPOT__TEXT_PROPERTIES", '["jobtitle", "hs_lead_status"]')
    settings = load_checked().settings
    assert settings.fields.score == "Acme_Lead_Score__c"
    assert settings.salesforce.source_fields == {"industry": "Industry_Segment__c"}
    assert settings.hubspot.text_properties == ("jobtitle", "hs_lead_status")
