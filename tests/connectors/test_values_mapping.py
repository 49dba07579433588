"""Pure mapping: CRM records ⇄ Lead / LeadUpdate / Rep / Outcome (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.hubspot import mapping as mh
from connectors.hubspot.settings import HubSpotPropertyNames
from connectors.records import Lead, LeadUpdate
from connectors.salesforce import mapping as ms
from connectors.salesforce.settings import FieldNames
from connectors.values import MappingError, text_card, to_bool, to_datetime, to_number, to_text

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expected"), [
    (None, None), ("", None), ("   ", None), ("  VP  of\nSales ", "VP of Sales"), (12, "12"), (12.0, "12"),
    (True, "true"), ({"a": 1}, None), (["x"], None), ("数据平台 负责人", "数据平台 负责人"),
])
def test_given_any_value_when_to_text_then_trimmed_string_or_none(raw: Any, expected: str | None) -> None:
    assert to_text(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    (None, None), (True, None), (3, 3.0), (2.5, 2.5), ("1,200", 1200.0), (" 3.5 ", 3.5), ("1e3", 1000.0),
    ("abc", None), ("", None), (float("nan"), None), (float("inf"), None), ("12 employees", None), ([1], None),
])
def test_given_any_value_when_to_number_then_finite_float_or_none(raw: Any, expected: float | None) -> None:
    assert to_number(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-01-05T09:00:00.000+0000", T0), ("2026-01-05T09:00:00Z", T0), ("2026-01-05T10:00:00+01:00", T0),
    ("1767603600000", T0), (1767603600000, T0), ("2026-01-05", T0 - timedelta(hours=9)),
    ("yesterday", None), (None, None), (True, None), ("", None),
])
def test_given_crm_timestamps_when_to_datetime_then_aware_utc(raw: Any, expected: datetime | None) -> None:
    assert to_datetime(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [(True, True), ("false", False), (" TRUE ", True), ("yes", None), (1, None)])
def test_to_bool(raw: Any, expected: bool | None) -> None:
    assert to_bool(raw) == expected


def test_given_text_fields_when_lead_card_then_labelled_lines_without_empties_or_repeats() -> None:
    rec = {"Title": "CTO", "Company": "Acme", "Industry": None, "Description": "Need pricing for 200 seats",
           "Notes__c": "Acme"}
    assert text_card(rec, ("Title", "Company", "Industry", "Description", "Notes__c", "Missing")) == (
        "Title: CTO\nCompany: Acme\nDescription: Need pricing for 200 seats"
    )


# ---------------------------------------------------------------- Salesforce
def sf_map(**source: str) -> ms.FieldMap:
    return ms.FieldMap.build(source, ("Title", "Company", "Description"), FieldNames().model_dump())


SF_REC = {
    "attributes": {"type": "Lead"}, "Id": "00Q000000000001AAA", "CreatedDate": "2026-01-01T00:00:00.000+0000",
    "SystemModstamp": "2026-01-05T09:00:00.000+0000", "OwnerId": "005000000000002AAA", "Title": "Head of Data",
    "Company": "北京数据科技", "Industry": "Technology", "NumberOfEmployees": 250, "AnnualRevenue": "1,500,000",
    "Country": "China", "LeadSource": "Web", "Status": "Open - Not Contacted", "Email": "li@example.cn",
    "Description": "我们需要 200 个席位的报价", "LeadPilot_Score__c": 80.0, "LeadPilot_Grade__c": "A",
}


def test_given_a_salesforce_row_when_mapped_then_lead_has_attributes_text_and_written_fields() -> None:
    lead = ms.lead_from_record(SF_REC, sf_map())
    assert (lead.id, lead.modified_at, lead.owner_id) == ("00Q000000000001AAA", T0, "005000000000002AAA")
    assert (lead.company, lead.employees, lead.revenue, lead.status) == ("北京数据科技", 250.0, 1_500_000.0,
                                                                         "Open - Not Contacted")
    assert lead.text == "Title: Head of Data\nCompany: 北京数据科技\nDescription: 我们需要 200 个席位的报价"
    assert lead.written == {"score": 80.0, "grade": "A"}
    assert "attributes" not in lead.raw


@pytest.mark.parametrize("missing", ["Id", "SystemModstamp"])
def test_given_a_row_without_id_or_modstamp_when_mapped_then_mapping_error_names_it(missing: str) -> None:
    rec = {k: v for k, v in SF_REC.items() if k != missing}
    with pytest.raises(MappingError, match="Id|SystemModstamp"):
        ms.lead_from_record(rec, sf_map())


def test_given_wrong_types_and_nulls_when_mapped_then_optional_attributes_are_none() -> None:
    rec = {**SF_REC, "NumberOfEmployees": "lots", "AnnualRevenue": None, "Title": {"x": 1}, "OwnerId": None,
           "CreatedDate": "not a date"}
    lead = ms.lead_from_record(rec, sf_map())
    assert (lead.employees, lead.revenue, lead.title, lead.owner_id, lead.created_at) == (None, None, None, None, None)


def test_given_custom_field_overrides_when_mapped_then_custom_fields_are_read() -> None:
    rec = {**SF_REC, "Industry__c": "Fintech", "Headcount__c": "42"}
    lead = ms.lead_from_record(rec, sf_map(industry="Industry__c", employees="Headcount__c"))
    assert (lead.industry, lead.employees) == ("Fintech", 42.0)
    assert "Industry__c" in sf_map(industry="Industry__c").select_fields()


def test_given_an_unknown_override_key_when_building_the_map_then_the_error_lists_valid_keys() -> None:
    with pytest.raises(ValueError, match="unknown attribute.*'sector'.*valid keys"):
        sf_map(sector="Sector__c")


def test_given_only_our_fields_changed_when_hashing_then_input_hash_is_unchanged() -> None:
    a = ms.lead_from_record(SF_REC, sf_map())
    b = ms.lead_from_record({**SF_REC, "SystemModstamp": "2026-01-06T09:00:00Z", "LeadPilot_Score__c": 12}, sf_map())
    c = ms.lead_from_record({**SF_REC, "Title": "Student"}, sf_map())
    assert a.input_hash == b.input_hash != c.input_hash


def test_given_a_rep_working_the_lead_when_only_status_changes_then_nothing_is_rescored() -> None:
    a = ms.lead_from_record(SF_REC, sf_map())
    b = ms.lead_from_record({**SF_REC, "Status": "Working - Contacted"}, sf_map())
    assert a.status != b.status and a.input_hash == b.input_hash


@pytest.mark.parametrize(("fields", "stage"), [
    ({}, None), ({"Status": "Working - Contacted"}, None), ({"Status": "Closed - Not Converted"}, "disqualified"),
    ({"Status": "Unqualified"}, "disqualified"), ({"IsConverted": True, "Status": "Closed - Converted"}, "converted"),
    ({"IsConverted": "true", "Status": "Closed - Not Converted"}, "converted"),
])
def test_given_salesforce_lead_status_when_mapped_then_stage_says_converted_disqualified_or_open(
        fields: dict[str, Any], stage: str | None) -> None:
    assert ms.lead_from_record({**SF_REC, "IsConverted": False, **fields}, sf_map()).stage == stage


@pytest.mark.parametrize(("props", "stage"), [
    ({"lifecyclestage": "lead"}, None), ({"lifecyclestage": "opportunity"}, "converted"),
    ({"lifecyclestage": "customer"}, "converted"), ({"lifecyclestage": "other"}, "disqualified"),
    ({"lifecyclestage": "lead", "hs_lead_status": "UNQUALIFIED"}, "disqualified"),
])
def test_given_hubspot_lifecycle_when_mapped_then_stage_says_converted_disqualified_or_open(
        props: dict[str, Any], stage: str | None) -> None:
    assert mh.lead_stage(props, props.get("hs_lead_status")) == stage


def test_given_an_update_when_mapped_then_only_set_fields_are_written_in_api_types() -> None:
    u = LeadUpdate("00Q1", score=87, opportunity=False, reasons="x" * 50, scored_at=T0, owner_id="005X")
    rec = ms.collection_record(u, sf_map(), max_reasons=10)
    assert rec == {"attributes": {"type": "Lead"}, "Id": "00Q1", "LeadPilot_Score__c": 87,
                   "LeadPilot_Opportunity__c": False, "LeadPilot_Reasons__c": "x" * 10,
                   "LeadPilot_Scored_At__c": "2026-01-05T09:00:00.000Z", "OwnerId": "005X"}
    row = ms.bulk_row(u, sf_map(), ["Id", "LeadPilot_Score__c", "LeadPilot_Grade__c", "LeadPilot_Opportunity__c"])
    assert row == {"Id": "00Q1", "LeadPilot_Score__c": "87", "LeadPilot_Grade__c": "", "LeadPilot_Opportunity__c": "false"}


@pytest.mark.parametrize(("rec", "queue", "active"), [
    ({"Id": "005A", "Name": "Ana", "IsActive": True, "UserType": "Standard"}, False, True),
    ({"Id": "005B", "FirstName": "Bo", "LastName": "Li", "IsActive": False}, False, False),
    ({"Id": "005C", "Name": "Lead Queue", "UserType": "Queue"}, True, True),
    ({"Id": "00G000000000001", "Name": "Queue"}, True, True),
])
def test_users_map_to_reps(rec: dict[str, Any], queue: bool, active: bool) -> None:
    rep = ms.rep_from_user(rec)
    assert (rep.is_queue, rep.active) == (queue, active) and rep.name


def test_given_a_closed_opportunity_when_mapped_then_outcome_links_lead_and_owner() -> None:
    lead = {"Id": "00Q1", "OwnerId": "005L"}
    opp = {"Id": "006A", "IsClosed": True, "IsWon": False, "Amount": 1200.5, "CloseDate": "2026-02-01", "OwnerId": "005O"}
    out = ms.outcome_from(lead, opp)
    assert out is not None and (out.lead_id, out.opportunity_id, out.won, out.owner_id, out.amount) == (
        "00Q1", "006A", False, "005O", 1200.5)
    assert ms.outcome_from(lead, {**opp, "IsClosed": False}) is None


def _lead(**raw: Any) -> Lead:
    base = {**SF_REC, **raw}
    return ms.lead_from_record(base, sf_map())


@pytest.mark.parametrize(("raw", "opp", "label", "expected"), [
    ({"IsConverted": True}, None, "converted", True),
    ({"IsConverted": True}, {"IsClosed": True, "IsWon": True}, "won", True),
    ({"IsConverted": True}, {"IsClosed": True, "IsWon": False}, "won", False),
    ({"IsConverted": True}, {"IsClosed": False}, "won", None),  # open opportunity: unknown yet
    ({"Status": "Closed - Not Converted"}, None, "converted", False),
    ({"CreatedDate": "2025-01-01T00:00:00Z"}, None, "converted", False),  # old, never converted
    ({}, None, "converted", None),  # recent and open: unknown yet
])
def test_labelling_rule(raw: dict[str, Any], opp: dict[str, Any] | None, label: str, expected: bool | None) -> None:
    got = ms.label_lead(_lead(**raw), opp, label=label, until=T0, stale_after=timedelta(days=90))
    assert (None if got is None else got.converted) == expected


# ---------------------------------------------------------------- HubSpot
def hs_map(obj: str = "contacts", **source: str) -> mh.PropertyMap:
    return mh.PropertyMap.build(obj, source, ("jobtitle", "company", "message"), HubSpotPropertyNames().model_dump())


HS_OBJ = {"id": "101", "properties": {
    "hs_object_id": "101", "createdate": "2026-01-01T00:00:00.000Z", "lastmodifieddate": "2026-01-05T09:00:00.000Z",
    "jobtitle": "Étudiant", "company": "Café Ltd", "numberofemployees": "12", "annualrevenue": "",
    "hubspot_owner_id": "7", "message": "Just a student", "leadpilot_score": "55", "lifecyclestage": "lead"},
    "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-05T09:00:00Z", "archived": False}


def test_given_a_contact_when_mapped_then_lead_reads_string_properties() -> None:
    lead = mh.lead_from_object(HS_OBJ, hs_map())
    assert (lead.id, lead.modified_at, lead.owner_id, lead.title, lead.employees, lead.revenue) == (
        "101", T0, "7", "Étudiant", 12.0, None)
    assert lead.text == "Jobtitle: Étudiant\nCompany: Café Ltd\nMessage: Just a student"
    assert lead.written == {"score": "55"}


def test_given_the_leads_object_when_mapped_then_hs_lastmodifieddate_is_the_stamp() -> None:
    obj = {"id": "5", "properties": {"hs_lastmodifieddate": "1767603600000"}}
    assert mh.lead_from_object(obj, hs_map("leads")).modified_at == T0
    with pytest.raises(MappingError):
        mh.lead_from_object({"properties": {}}, hs_map())


def test_given_an_update_when_mapped_then_hubspot_gets_strings() -> None:
    u = LeadUpdate("101", score=87, grade="A", opportunity=True, scored_at=T0, owner_id="9")
    assert mh.update_input(u, hs_map()) == {"id": "101", "properties": {
        "leadpilot_score": "87", "leadpilot_grade": "A", "leadpilot_opportunity": "true",
        "leadpilot_scored_at": "1767603600000", "hubspot_owner_id": "9"}}


@pytest.mark.parametrize(("props", "won"), [
    ({"dealstage": "closedwon", "hs_is_closed_won": "true", "closedate": "2026-02-01T00:00:00Z"}, True),
    ({"dealstage": "closedlost", "hs_is_closed_won": "false", "closedate": "2026-02-01T00:00:00Z"}, False),
    ({"dealstage": "qualifiedtobuy", "closedate": "2026-02-01T00:00:00Z"}, None),
])
def test_deals_map_to_outcomes(props: dict[str, str], won: bool | None) -> None:
    out = mh.outcome_from_deal({"id": "9", "properties": {**props, "amount": "10.5", "hubspot_owner_id": "3"}}, "101")
    assert (None if out is None else out.won) == won
    if out is not None:
        assert (out.lead_id, out.opportunity_id, out.amount, out.owner_id) == ("101", "9", 10.5, "3")


def test_owners_map_to_reps() -> None:
    rep = mh.rep_from_owner({"id": "3", "first_name": "Ana", "last_name": "Ruiz", "email": "a@x", "archived": True,
                             "type": "PERSON"})
    assert (rep.name, rep.active, rep.is_queue) == ("Ana Ruiz", False, False)
    assert mh.rep_from_owner({"id": "4", "email": "q@x", "type": "QUEUE"}).is_queue
