"""Exclusion reasons counted by kind (status, the report, the demo's ``exclusions``)."""

from __future__ import annotations

import pytest

from sync.jobs.queue import exclusion_kind


@pytest.mark.parametrize(("why", "kind"), [
    ("outside working hours (02:32 in America/New_York, works 08:30-17:00)", "outside working hours"),
    ("at capacity: 10 open of max 10", "at capacity"),
    ("daily cap reached: 15 today of max 15", "daily cap reached"),
    ("out of office 2026-12-24 to 2027-01-02", "out of office"),
    ("not a working day (sat in Europe/Berlin)", "not a working day"),
    ("outside territory dach: country China not in (Germany, AT)", "outside territory"),
    ("outside territories: dach: lead has no country; us-smb: lead has no country", "outside territory"),
    ("inactive", "inactive"),
    ("not eligible under rule 2 (enterprise)", "not eligible under the assignment rules"),
    ("something new: with details", "something new"),
])
def test_given_a_reason_when_counting_then_its_kind_without_the_details(why: str, kind: str) -> None:
    assert exclusion_kind(why) == kind
