"""What the connector pulls for routing: the lead's state (overridable like any source field) and
the other fields the routing file's territories and rules name (no I/O beyond a temp file)."""

from __future__ import annotations

from pathlib import Path

from connectors.hubspot import mapping as mh
from connectors.hubspot.settings import HubSpotPropertyNames
from connectors.salesforce import mapping as ms
from connectors.salesforce.settings import FieldNames
from sync.config.settings import RoutingSettings, Settings
from sync.jobs.lead_context import lead_attributes
from sync.wiring.connector import routing_fields

SF_ROW = {"Id": "00Q1", "SystemModstamp": "2026-01-05T09:00:00.000+0000", "Country": "United States"}


def test_given_default_fields_then_salesforce_and_hubspot_pull_the_state() -> None:
    fmap = ms.FieldMap.build({}, (), FieldNames().model_dump())
    pmap = mh.PropertyMap.build("contacts", {}, (), HubSpotPropertyNames().model_dump())
    assert "State" in fmap.select_fields() and "state" in pmap.properties()
    lead = ms.lead_from_record({**SF_ROW, "State": "CA"}, fmap)
    assert lead_attributes(lead)["state"] == "CA"


def test_given_the_state_kept_in_a_custom_field_then_routing_reads_it_as_the_state() -> None:
    fmap = ms.FieldMap.build({"state": "Province__c"}, (), FieldNames().model_dump())
    assert "Province__c" in fmap.select_fields() and "State" not in fmap.select_fields()
    assert lead_attributes(ms.lead_from_record({**SF_ROW, "Province__c": "Ontario"}, fmap))["state"] == "Ontario"
    pmap = mh.PropertyMap.build("contacts", {"state": "province"}, (), HubSpotPropertyNames().model_dump())
    obj = {"id": "1", "properties": {"lastmodifieddate": "2026-01-05T09:00:00Z", "province": "Bayern"}}
    assert lead_attributes(mh.lead_from_object(obj, pmap))["state"] == "Bayern"


def _settings(tmp_path: Path, text: str) -> Settings:
    (tmp_path / "routing.toml").write_text(text, encoding="utf-8")
    return Settings(crm="salesforce", routing=RoutingSettings(file=tmp_path / "routing.toml"))


def test_given_fields_in_territories_and_rules_then_each_is_pulled_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path, """
[territories.north]
fields = { Region__c = ["North"], Tier__c = { min = 2 } }

[territories.south]
fields = { Region__c = ["South"] }

[[rules]]
when = { fields = { Segment__c = ["Public"] } }
reps = ["a@example.com"]

[[reps]]
email = "a@example.com"
territory = "north"
""")
    assert routing_fields(settings) == ("Region__c", "Tier__c", "Segment__c")
    fmap = ms.FieldMap.build({}, (), FieldNames().model_dump(), routing_fields(settings))
    assert fmap.select_fields()[-3:] == ["Region__c", "Tier__c", "Segment__c"]


def test_given_no_file_or_an_invalid_one_or_odd_names_then_nothing_extra_is_pulled(tmp_path: Path) -> None:
    assert routing_fields(Settings(crm="salesforce", routing=RoutingSettings(file=tmp_path / "none.toml"))) == ()
    assert routing_fields(_settings(tmp_path, "[territories.x]\nnot_a_key = 1\n")) == ()
    odd = _settings(tmp_path, '[territories.x]\nfields = { "Name, Id FROM User --" = ["x"], Ok__c = ["y"] }\n')
    assert routing_fields(odd) == ("Ok__c",)
