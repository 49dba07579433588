"""Closing the assignments of leads removed in the CRM, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sync.store import Decision, Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url, crm="hubspot")
    yield opened
    opened.close()


def _decide(store: Store, lead_id: str, rep: str | None) -> None:
    assert store.record_decision(Decision(lead_id, rep, "contextual", 1, 0.5, T0))


def test_given_removed_leads_when_closed_then_no_outcome_no_load_and_no_later_reward(store: Store) -> None:
    for lid, rep in (("L1", "r1"), ("L2", "r1"), ("L3", "r2"), ("L4", None)):
        _decide(store, lid, rep)
    assert store.apply_outcome("L2", True, T0)  # closed with an outcome before: left as it is
    assert store.rep_load() == {"r1": 1, "r2": 1}

    at, now = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    assert store.close_assignments(["L3", "L1", "L2", "L9"], at, now) == ["L1", "L3"]

    assert store.rep_load() == {}
    got = {a.lead_id: a for a in store.assignments()}
    assert (got["L1"].outcome, got["L1"].outcome_at, got["L1"].reward_applied_at) == (None, at, now)
    assert got["L2"].outcome == "won" and got["L4"].reward_applied_at is None
    assert store.apply_outcome("L1", True, now) is False  # never rewarded afterwards
    assert store.close_assignments(["L1"], at, now) == []  # once
