"""The SOQL subset: parsing, evaluation and Salesforce's error shapes (pure, no server)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from sandbox.salesforce import soql
from sandbox.store import STANDARD_FIELDS

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SCHEMA = {obj: {**fields, **({"ML_Score__c": "double"} if obj == "Lead" else {})}
          for obj, fields in STANDARD_FIELDS.items()}


def lead(i: int, **values: Any) -> dict[str, Any]:
    rec: dict[str, Any] = dict.fromkeys(SCHEMA["Lead"])
    rec.update(Id=f"00Q{i:012d}AAA", IsDeleted=False, IsConverted=False,
               SystemModstamp=datetime(2026, 1, 1, 12, 0, i % 60, 500_900, tzinfo=UTC))
    rec.update(values)
    return rec


LEADS = [
    lead(1, Company="Acme", Country="Germany", NumberOfEmployees=50, Email="a@acme.com", ML_Score__c=10.0),
    lead(2, Company="acme GmbH", Country="germany", NumberOfEmployees=500, IsConverted=True, ML_Score__c=90.0),
    lead(3, Company="Globex", Country=None, NumberOfEmployees=None, Email="x@globex.com"),
    lead(4, Company="O'Reilly", Country="China", NumberOfEmployees=5000, IsDeleted=True,
         CreatedDate=datetime(2026, 1, 5, 8, 0, tzinfo=UTC)),
    lead(5, Company="Initech", Country="United States", NumberOfEmployees=20,
         CreatedDate=datetime(2025, 12, 1, tzinfo=UTC), ConvertedDate=date(2025, 12, 20)),
]


def run(text: str, include_deleted: bool = False) -> list[str]:
    q = soql.parse(text, SCHEMA.__getitem__, NOW)
    return [r["Id"][-6:-3] for r in soql.execute(q, LEADS, include_deleted)]


@pytest.mark.parametrize(("where", "expected"), [
    ("Country = 'GERMANY'", ["001", "002"]),  # text compares case-insensitively
    ("Country != 'Germany'", ["003", "005"]),  # null != 'x' is true
    ("Country = null", ["003"]),
    ("Country != null", ["001", "002", "005"]),
    ("NumberOfEmployees > 50", ["002"]),
    ("NumberOfEmployees <= 50", ["001", "005"]),  # null never compares
    ("NumberOfEmployees >= 20 AND NumberOfEmployees < 500", ["001", "005"]),
    ("Country IN ('China', 'United States', null)", ["003", "005"]),
    ("Country NOT IN ('Germany')", ["003", "005"]),
    ("IsConverted = true", ["002"]),
    ("IsConverted = false AND NOT Company LIKE 'glo%'", ["001", "005"]),
    ("(Country = 'Germany' OR Country = 'China') AND ML_Score__c > 50", ["002"]),
    ("Company LIKE 'acme%'", ["001", "002"]),
    ("Company LIKE 'O\\'Reilly'", []),  # deleted: only queryAll sees it
    ("Email LIKE '%@globex.com'", ["003"]),
    ("Id = '00Q000000000001'", ["001"]),  # a 15-character id names the same record
    ("SystemModstamp > 2026-01-01T12:00:02Z", ["002", "003", "005"]),  # stored to the millisecond
    ("SystemModstamp > 2026-01-01T12:00:02.500Z", ["003", "005"]),
    ("SystemModstamp < 2026-01-01T13:00:02+01:00", ["001"]),
    ("SystemModstamp >= 2026-01-01T12:00:03.000+0000", ["003", "005"]),
    ("ConvertedDate = 2025-12-20", ["005"]),
    ("CreatedDate = LAST_N_DAYS:60", ["005"]),
    ("CreatedDate < YESTERDAY", ["005"]),
])
def test_given_leads_when_filtering_then_soql_semantics_hold(where: str, expected: list[str]) -> None:
    assert run(f"SELECT Id FROM Lead WHERE {where}") == expected


def test_given_deleted_lead_when_query_all_then_it_is_included() -> None:
    assert run("SELECT Id FROM Lead WHERE Company LIKE 'O\\'Reilly'", include_deleted=True) == ["004"]
    assert run("SELECT Id FROM Lead WHERE CreatedDate = TODAY", include_deleted=True) == ["004"]


@pytest.mark.parametrize(("order", "expected"), [
    ("NumberOfEmployees", ["003", "005", "001", "002"]),  # ascending: nulls first
    ("NumberOfEmployees DESC", ["002", "001", "005", "003"]),  # descending: nulls last
    ("NumberOfEmployees ASC NULLS LAST", ["005", "001", "002", "003"]),
    ("Country, Company DESC", ["003", "002", "001", "005"]),  # case-insensitive text, two keys
    ("SystemModstamp DESC LIMIT 2", ["005", "003"]),
    ("SystemModstamp LIMIT 2 OFFSET 1", ["002", "003"]),
])
def test_given_order_by_when_sorting_then_salesforce_order(order: str, expected: list[str]) -> None:
    assert run(f"SELECT Id FROM Lead ORDER BY {order}") == expected


def test_given_select_list_when_parsed_then_fields_are_canonical_and_ordered() -> None:
    q = soql.parse("select id, COMPANY, ml_score__c from lead where isconverted = TRUE", SCHEMA.__getitem__, NOW)
    assert (q.obj, q.fields, q.count_only) == ("Lead", ("Id", "Company", "ML_Score__c"), False)
    count = soql.parse("SELECT COUNT() FROM Opportunity", SCHEMA.__getitem__, NOW)
    assert count.count_only and count.obj == "Opportunity"


def test_given_string_escapes_when_parsed_then_unescaped() -> None:
    rows = [lead(9, Company="Tab\there \\ 'quoted'")]
    q = soql.parse("SELECT Id FROM Lead WHERE Company = 'Tab\\there \\\\ \\'quoted\\''", SCHEMA.__getitem__, NOW)
    assert [r["Id"] for r in soql.execute(q, rows)] == ["00Q000000000009AAA"]


@pytest.mark.parametrize(("text", "code", "message"), [
    ("SELECT Idx FROM Lead", "INVALID_FIELD",
     "\nSELECT Idx FROM Lead\n       ^\nERROR at Row:1:Column:8\nNo such column 'Idx' on entity 'Lead'. If you are "
     "attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference "
     "your WSDL or the describe call for the appropriate names."),
    ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY",
     "\nSELECT Id FROM Lead WHERE\n                         ^\nERROR at Row:1:Column:26\nunexpected token: <EOF>"),
    ("SELECT Id FROM Lead WHERE A__c = 1 OR", "INVALID_FIELD", None),
    ("SELECT Id FROM Lead WHERE IsConverted = true AND Country = 'x' OR Country = 'y'", "MALFORMED_QUERY",
     "\nSELECT Id FROM Lead WHERE IsConverted = true AND Country = 'x' OR Country = 'y'\n"
     + " " * 63 + "^\nERROR at Row:1:Column:64\nunexpected token: OR"),
    ("SELECT Id FROM Lead WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_FIELD", None),
    ("SELECT Id FROM Lead WHERE SystemModstamp > 2024-01-01", "INVALID_FIELD", None),
    ("SELECT Id FROM Lead WHERE Company = 5", "INVALID_FIELD", None),
    ("SELECT Id FROM Lead WHERE IsConverted = 'true'", "INVALID_FIELD", None),
    ("SELECT Id FROM Account", "INVALID_TYPE", None),
    ("SELECT Owner.Name FROM Lead", "INVALID_FIELD", None),
    ("SELECT Id, id FROM Lead", "MALFORMED_QUERY", None),
    ("SELECT Id FROM Lead WHERE SystemModstamp > 2024-01-01T00:00:00 05:00", "MALFORMED_QUERY", None),  # raw '+'
    ("SELECT Id FROM Lead LIMIT x", "MALFORMED_QUERY", None),
    ("SELECT Id FROM Lead WHERE Company = 'a' ; DROP", "MALFORMED_QUERY", None),
    ("  ", "MALFORMED_QUERY", "A query string has to be specified"),
])
def test_given_bad_query_when_parsed_then_salesforce_error(text: str, code: str, message: str | None) -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.parse(text, SCHEMA.__getitem__, NOW)
    assert err.value.code == code
    if message is not None:
        assert err.value.message == message
    else:
        assert "ERROR at Row:1:Column:" in err.value.message


def test_given_type_mismatch_when_parsed_then_message_names_field_and_type() -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.parse("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01'", SCHEMA.__getitem__, NOW)
    assert err.value.message.endswith(
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes")


def test_given_ten_thousand_records_when_query_then_filters_and_sorts_all() -> None:
    rows = [lead(i, NumberOfEmployees=i % 97, Country="Germany" if i % 3 else "China") for i in range(10_000)]
    q = soql.parse("SELECT Id FROM Lead WHERE Country = 'germany' AND NumberOfEmployees >= 10 "
                   "ORDER BY NumberOfEmployees DESC, Id", SCHEMA.__getitem__, NOW)
    out = soql.execute(q, rows)
    expected = sorted((r for r in rows if r["Country"] == "Germany" and r["NumberOfEmployees"] >= 10),
                      key=lambda r: (-r["NumberOfEmployees"], r["Id"]))
    assert [r["Id"] for r in out] == [r["Id"] for r in expected]
