"""A queued lead decided again: both decisions logged, one in effect, the reward on the second
(SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sync.store import Decision, Store

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url, crm="salesforce")
    yield opened
    opened.close()


def _queued(lead_id: str = "L1") -> Decision:
    return Decision(lead_id=lead_id, rep_id=None, policy_name="contextual", policy_version=1, propensity=1.0,
                    decided_at=T0, considered={"r1": "outside working hours (02:00 in UTC, works 08:00-17:00)"},
                    context={"score": 0.4}, lead_created_at=T0 - timedelta(seconds=30))


def _second(first_id: int, lead_id: str = "L1", at: datetime = T0 + timedelta(hours=6)) -> Decision:
    return Decision(lead_id=lead_id, rep_id="r1", policy_name="contextual", policy_version=2, propensity=0.6,
                    decided_at=at, considered={"r1": None, "r2": "at capacity: 3 open of max 3"},
                    context={"score": 0.4}, probabilities={"r1": 0.6, "r3": 0.4}, supersedes=first_id,
                    supersede_reason="queued lead decided again")


def test_given_a_queued_lead_when_decided_again_then_both_are_logged_and_only_the_second_is_in_effect(store: Store) -> None:
    assert store.record_decision(_queued())
    [first] = store.queued()
    assert first.rep_id is None and first.queued and first.lead_created_at == T0 - timedelta(seconds=30)
    assert store.record_decision(_second(first.id))
    log = store.assignments(["L1"])
    assert [a.rep_id for a in log] == [None, "r1"]
    assert log[0].superseded_at == T0 + timedelta(hours=6) and log[0].superseded_reason == "queued lead decided again"
    assert log[0].considered == {"r1": "outside working hours (02:00 in UTC, works 08:00-17:00)"}
    assert log[1].propensity == 0.6 and log[1].superseded_at is None
    assert [a.rep_id for a in store.assignments(["L1"], effective=True)] == ["r1"]
    assert store.queued() == []
    assert store.rep_load() == {"r1": 1}


def test_given_a_redecided_lead_when_its_outcome_arrives_then_the_reward_belongs_to_the_second(store: Store) -> None:
    store.record_decision(_queued())
    store.record_decision(_second(store.queued()[0].id))
    store.mark_written(["L1"], T0 + timedelta(hours=6, seconds=5))
    assert store.apply_outcome("L1", True, T0 + timedelta(days=30))
    assert not store.apply_outcome("L1", True, T0 + timedelta(days=30))  # exactly once
    first, second = store.assignments(["L1"])
    assert first.outcome is None and first.written_at is None
    assert second.outcome == "won" and second.written_at == T0 + timedelta(hours=6, seconds=5)


def test_given_two_processes_redeciding_the_same_queued_lead_then_only_one_decision_takes_effect(store: Store) -> None:
    store.record_decision(_queued())
    first_id = store.queued()[0].id
    assert store.record_decision(_second(first_id))
    assert not store.record_decision(_second(first_id, at=T0 + timedelta(hours=6, seconds=1)))
    assert len(store.assignments(["L1"], effective=True)) == 1
    assert len(store.assignments(["L1"])) == 2


def test_given_a_lead_with_a_decision_in_effect_when_a_second_plain_decision_comes_then_it_is_refused(store: Store) -> None:
    assert store.record_decision(_queued())
    assert not store.record_decision(_queued())
    assert len(store.assignments(["L1"])) == 1


def test_given_a_queued_lead_taken_by_a_human_when_superseded_then_it_leaves_the_queue(store: Store) -> None:
    store.record_decision(_queued())
    [first] = store.queued()
    assert store.supersede(first.id, "owner set in the CRM", T0 + timedelta(hours=1))
    assert not store.supersede(first.id, "owner set in the CRM", T0 + timedelta(hours=2))
    assert store.queued() == [] and store.assignments(["L1"], effective=True) == []


def test_given_crm_counts_read_at_a_time_when_asking_load_since_then_only_later_or_unwritten_decisions_count(store: Store) -> None:
    read_at = T0 + timedelta(hours=1)
    for i, rep in enumerate(["r1", "r1", "r2"]):
        store.record_decision(Decision(lead_id=f"W{i}", rep_id=rep, policy_name="p", policy_version=1,
                                       propensity=0.5, decided_at=T0))
    store.mark_written(["W0"], T0 + timedelta(minutes=30))  # before the read: in the CRM's count
    store.mark_written(["W1"], T0 + timedelta(hours=2))  # after it: not in the count yet
    assert store.load_since(read_at) == {"r1": 1, "r2": 1}
