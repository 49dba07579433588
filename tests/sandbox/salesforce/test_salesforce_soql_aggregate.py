"""Aggregate SOQL in the sandbox: COUNT(field) with GROUP BY, aliases, and Salesforce's refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.salesforce import soql
from sandbox.salesforce.records import aggregate_record
from sandbox.store import STANDARD_FIELDS

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SCHEMA = dict(STANDARD_FIELDS)


def lead(i: int, owner: str | None, status: str = "Open - Not Contacted", converted: bool = False) -> dict[str, Any]:
    rec: dict[str, Any] = dict.fromkeys(SCHEMA["Lead"])
    rec.update(Id=f"00Q{i:012d}AAA", IsDeleted=False, IsConverted=converted, OwnerId=owner, Status=status)
    return rec


LEADS = [lead(1, "005A"), lead(2, "005A"), lead(3, "005B", "Working - Contacted"), lead(4, "005B", converted=True),
         lead(5, "005A", "Closed - Not Converted"), lead(6, None)]


def rows(text: str) -> list[dict[str, Any]]:
    q = soql.parse(text, SCHEMA.__getitem__, NOW)
    return [aggregate_record(r, q, "59.0") for r in soql.execute(q, LEADS)]


def test_given_a_group_by_owner_when_counting_open_leads_then_one_aggregate_row_per_owner() -> None:
    got = rows("SELECT OwnerId, COUNT(Id) n FROM Lead WHERE IsConverted = false "
               "AND Status NOT IN ('Closed - Not Converted') GROUP BY OwnerId ORDER BY OwnerId")
    assert got == [{"attributes": {"type": "AggregateResult"}, "OwnerId": None, "n": 1},
                   {"attributes": {"type": "AggregateResult"}, "OwnerId": "005A", "n": 2},
                   {"attributes": {"type": "AggregateResult"}, "OwnerId": "005B", "n": 1}]


def test_given_no_alias_when_counting_then_the_column_is_expr0_and_counts_skip_nulls() -> None:
    assert rows("SELECT COUNT(OwnerId) FROM Lead") == [{"attributes": {"type": "AggregateResult"}, "expr0": 5}]


@pytest.mark.parametrize(("text", "message"), [
    ("SELECT OwnerId, Status, COUNT(Id) FROM Lead GROUP BY OwnerId", "Field must be grouped or aggregated: Status"),
    ("SELECT OwnerId, COUNT(Id) FROM Lead", "Field must be grouped or aggregated: OwnerId"),
    ("SELECT OwnerId, COUNT(Id) FROM Lead GROUP BY Nope", "No such column 'Nope' on entity 'Lead'"),
])
def test_given_an_ungrouped_field_when_aggregating_then_refused_as_salesforce_does(text: str, message: str) -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.parse(text, SCHEMA.__getitem__, NOW)
    assert message in err.value.message
