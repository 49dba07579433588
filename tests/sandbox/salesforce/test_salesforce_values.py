"""Salesforce value spellings and write checks (pure functions, no server)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from sandbox.salesforce.records import RecordError, find_id, prepare
from sandbox.salesforce.values import BadValue, coerce, format_datetime, to_csv, to_json
from sandbox.store import Store

STAMP = datetime(2026, 1, 5, 9, 0, 1, 234_567, tzinfo=UTC)


@pytest.mark.parametrize(("value", "json_value", "csv_value"), [
    (STAMP, "2026-01-05T09:00:01.234+0000", "2026-01-05T09:00:01.234Z"),
    (STAMP.astimezone(timezone(timedelta(hours=-5))), "2026-01-05T09:00:01.234+0000", "2026-01-05T09:00:01.234Z"),
    (date(2026, 2, 1), "2026-02-01", "2026-02-01"),
    (True, True, "true"),
    (None, None, ""),
    (50.0, 50.0, "50"),
    (12.5, 12.5, "12.5"),
    ("Zürich 北京", "Zürich 北京", "Zürich 北京"),
])
def test_given_store_value_when_serialised_then_salesforce_spelling(value: Any, json_value: Any, csv_value: str) -> None:
    assert to_json(value) == json_value
    assert to_csv(value) == csv_value


@pytest.mark.parametrize(("ftype", "raw", "expected"), [
    ("double", "87", 87.0),
    ("double", 87, 87),
    ("int", "12", 12),
    ("boolean", "TRUE", True),
    ("boolean", False, False),
    ("datetime", "2026-01-05T09:00:00.000+0000", datetime(2026, 1, 5, 9, tzinfo=UTC)),
    ("datetime", "2026-01-05T10:00:00+01:00", datetime(2026, 1, 5, 9, tzinfo=UTC)),
    ("datetime", "2026-01-05T09:00:00Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
    ("date", "2026-01-05", date(2026, 1, 5)),
    ("string", 42, "42"),
    ("picklist", None, None),
])
def test_given_written_value_when_coerced_then_store_type(ftype: str, raw: Any, expected: Any) -> None:
    assert coerce("F__c", ftype, raw) == expected


@pytest.mark.parametrize(("ftype", "raw"), [
    ("double", "abc"), ("double", True), ("boolean", "yes"), ("datetime", "2026-01-05"),
    ("datetime", "2026-01-05T09:00:00"), ("date", "soon"), ("string", {"a": 1}),
])
def test_given_wrong_type_when_coerced_then_bad_value_names_field(ftype: str, raw: Any) -> None:
    with pytest.raises(BadValue, match=r"^F__c: value not of required type: "):
        coerce("F__c", ftype, raw)


def test_given_datetime_when_formatted_then_milliseconds_only() -> None:
    assert format_datetime(datetime(2026, 1, 5, 9, 0, 0, 999_999, tzinfo=UTC)) == "2026-01-05T09:00:00.999+0000"


@pytest.fixture
def store() -> Store:
    s = Store()
    s.insert("User", {"Id": "005000000000001AAA", "Username": "a", "IsActive": True})
    s.insert("User", {"Id": "005000000000002AAA", "Username": "b", "IsActive": False})
    s.insert("Lead", {"Id": "00Q000000000003AAA", "LastName": "X", "Company": "Y"})
    return s


@pytest.mark.parametrize(("values", "code"), [
    ({"Nope": 1}, "INVALID_FIELD"),
    ({"SystemModstamp": "2026-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
    ({"NumberOfEmployees": "many"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
    ({"Title": "x" * 256}, "STRING_TOO_LONG"),
    ({"OwnerId": "005000000000002AAA"}, "INACTIVE_OWNER_OR_USER"),
    ({"OwnerId": "005000000000009AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
    ({"OwnerId": None}, "REQUIRED_FIELD_MISSING"),
])
def test_given_bad_update_when_prepared_then_record_error(store: Store, values: dict[str, Any], code: str) -> None:
    with pytest.raises(RecordError) as err:
        prepare(store, "Lead", values)
    assert err.value.code == code


def test_given_good_update_when_prepared_then_canonical_and_typed(store: Store) -> None:
    assert prepare(store, "Lead", {"title": "CEO", "numberofemployees": "40", "OwnerId": "005000000000001"}) == {
        "Title": "CEO", "NumberOfEmployees": 40, "OwnerId": "005000000000001AAA"}  # stored as 18 characters


@pytest.mark.parametrize(("rid", "code"), [
    (None, "MISSING_ARGUMENT"), ("001000000000003AAA", "MALFORMED_ID"), ("00Q0000000000", "MALFORMED_ID"),
    ("00Q000000000099AAA", "INVALID_CROSS_REFERENCE_KEY"),
])
def test_given_bad_id_when_resolved_then_record_error(store: Store, rid: Any, code: str) -> None:
    with pytest.raises(RecordError) as err:
        find_id(store, "Lead", rid)
    assert err.value.code == code
    assert find_id(store, "Lead", "00Q000000000003") == "00Q000000000003AAA"
