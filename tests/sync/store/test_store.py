"""The state store's API on SQLite and PostgreSQL: watermarks, leads, parking, decisions,
outcomes, policy state, runs and the model registry."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sync.store import Decision, LeadState, Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url, crm="salesforce")
    yield opened
    opened.close()


def _decision(lead_id: str, rep_id: str | None = "r1", **kw: object) -> Decision:
    values: dict[str, object] = {
        "lead_id": lead_id,
        "rep_id": rep_id,
        "policy_name": "contextual",
        "policy_version": 3,
        "propensity": 0.25,
        "decided_at": T0,
        "considered": {"r1": None, "r2": "capacity: 50/50 open"},
        "context": {"country": "DE", "score": 0.7},
    }
    values.update(kw)
    return Decision(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------- watermarks and times
def test_given_no_run_yet_when_reading_a_watermark_then_none(store: Store) -> None:
    assert store.get_watermark("leads") is None


def test_given_a_non_utc_time_when_stored_then_it_comes_back_as_the_same_instant_in_utc(store: Store) -> None:
    berlin = timezone(timedelta(hours=1))
    store.set_watermark("leads", datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=berlin))
    got = store.get_watermark("leads")
    assert got == datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)
    assert got is not None and got.utcoffset() == timedelta(0)


def test_given_two_crms_when_setting_watermarks_then_each_keeps_its_own(store: Store) -> None:
    other = store.for_crm("hubspot")
    store.set_watermark("leads", T0)
    other.set_watermark("leads", T0 + timedelta(days=1))
    store.set_watermark("leads", T0 + timedelta(hours=1))
    assert store.get_watermark("leads") == T0 + timedelta(hours=1)
    assert other.get_watermark("leads") == T0 + timedelta(days=1)
    assert store.get_watermark("outcomes") is None


def test_given_a_naive_datetime_when_stored_then_it_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.set_watermark("leads", datetime(2026, 1, 1))


# ---------------------------------------------------------------- lead states
def test_given_lead_states_when_upserted_twice_then_the_latest_wins_and_unknown_ids_are_absent(
    store: Store,
) -> None:
    first = LeadState("L1", status="scored", modstamp=T0, input_hash="a" * 64, score=0.5, grade="B")
    assert store.upsert_lead_states([first, LeadState("L2")], T0) == 2
    store.upsert_lead_states(
        [replace(first, score=0.9, grade="A", opportunity=True)], T0 + timedelta(minutes=1)
    )

    got = store.lead_state(["L1", "L2", "nope"])
    assert set(got) == {"L1", "L2"}
    assert (got["L1"].score, got["L1"].grade, got["L1"].opportunity) == (0.9, "A", True)
    assert got["L1"].modstamp == T0 and got["L1"].input_hash == "a" * 64
    assert got["L1"].updated_at == T0 + timedelta(minutes=1)
    assert got["L2"].status == "pending" and got["L2"].attempts == 0
    assert store.count_leads() == {"scored": 1, "pending": 1}


def test_given_more_ids_than_one_query_holds_when_read_then_all_come_back(store: Store) -> None:
    states = [LeadState(f"L{i:05d}", status="written") for i in range(1_203)]
    store.upsert_lead_states(states, T0)
    assert len(store.lead_state(s.lead_id for s in states)) == 1_203


def test_given_an_unknown_status_when_upserted_then_value_error(store: Store) -> None:
    with pytest.raises(ValueError, match="not one of"):
        store.upsert_lead_states([LeadState("L1", status="done")], T0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- parking
def test_given_a_failing_lead_when_parked_repeatedly_then_the_backoff_doubles_up_to_the_cap(
    store: Store,
) -> None:
    delays = [store.park("L1", f"error {i}", T0) - T0 for i in range(12)]
    assert delays[:4] == [timedelta(minutes=m) for m in (5, 10, 20, 40)]
    assert delays[-1] == timedelta(hours=24)
    state = store.lead_state(["L1"])["L1"]
    assert (state.status, state.attempts, state.last_error) == ("parked", 12, "error 11")


def test_given_parked_leads_when_time_passes_then_only_due_ones_are_returned(store: Store) -> None:
    store.upsert_lead_states([LeadState("L1", status="scored", score=0.4)], T0)
    store.park("L1", "UNABLE_TO_LOCK_ROW", T0)  # due at +5 min
    store.park("L2", "x" * 5000, T0)
    store.park("L2", "INVALID_FIELD", T0)  # due at +10 min

    assert store.due_parked(T0 + timedelta(minutes=4)) == []
    assert [s.lead_id for s in store.due_parked(T0 + timedelta(minutes=5))] == ["L1"]
    assert [s.lead_id for s in store.list_parked()] == ["L1", "L2"]
    parked_l1 = store.lead_state(["L1"])["L1"]
    assert parked_l1.score == 0.4  # parking keeps what was known

    store.mark_written(["L1"], T0 + timedelta(minutes=6))
    after = store.lead_state(["L1"])["L1"]
    assert (after.status, after.attempts, after.last_error, after.parked_until) == ("written", 0, None, None)
    assert [s.lead_id for s in store.list_parked()] == ["L2"]


# ---------------------------------------------------------------- decisions
def test_given_a_lead_when_decided_twice_then_only_the_first_decision_is_recorded(store: Store) -> None:
    assert store.record_decision(_decision("L1", "r1")) is True
    assert store.record_decision(_decision("L1", "r2", propensity=0.9)) is False

    (recorded,) = store.assignments(["L1"])
    assert (recorded.rep_id, recorded.propensity, recorded.policy_version) == ("r1", 0.25, 3)
    assert recorded.considered == {"r1": None, "r2": "capacity: 50/50 open"}
    assert recorded.context == {"country": "DE", "score": 0.7}
    assert recorded.decided_at == T0 and recorded.written_at is None
    assert store.lead_state(["L1"])["L1"].status == "scored"


def test_given_a_decision_with_its_choice_distribution_then_it_round_trips_and_a_bad_one_is_refused(store: Store) -> None:
    assert store.record_decision(_decision("L1", "r1", probabilities={"r1": 0.25, "r3": 0.75}))
    assert store.record_decision(_decision("L2", "r1"))  # older callers: only the chosen propensity
    got = {a.lead_id: a.probabilities for a in store.assignments(["L1", "L2"])}
    assert got == {"L1": {"r1": 0.25, "r3": 0.75}, "L2": None}
    with pytest.raises(ValueError, match="sum to 1"):
        store.record_decision(_decision("L3", "r1", probabilities={"r1": 0.25, "r3": 0.5}))
    assert store.assignments(["L3"]) == []


def test_given_a_failure_inside_an_atomic_block_then_decision_and_status_are_both_rolled_back(
    store: Store,
) -> None:
    with pytest.raises(RuntimeError), store.atomic():
        assert store.record_decision(_decision("L1"))
        store.upsert_lead_states([LeadState("L1", status="scored", score=0.3)], T0)
        raise RuntimeError("crash between decision and commit")
    assert store.assignments() == []
    assert store.lead_state(["L1"]) == {}
    assert store.record_decision(_decision("L1")) is True


def test_given_an_atomic_block_then_calls_through_for_crm_join_it(store: Store) -> None:
    with pytest.raises(RuntimeError), store.atomic():
        store.set_watermark("leads", T0)
        store.for_crm("hubspot").set_watermark("leads", T0)
        raise RuntimeError("rolled back together")
    assert store.get_watermark("leads") is None
    assert store.for_crm("hubspot").get_watermark("leads") is None


def test_given_two_threads_racing_when_deciding_the_same_lead_then_exactly_one_wins(store: Store) -> None:
    results = _race(lambda i: store.record_decision(_decision("L1", f"r{i}")), threads=6)
    assert sorted(results) == [False] * 5 + [True]
    assert len(store.assignments()) == 1


@pytest.mark.parametrize("propensity", [0.0, -0.1, 1.5])
def test_given_an_impossible_propensity_when_recorded_then_value_error(
    store: Store, propensity: float
) -> None:
    with pytest.raises(ValueError, match="propensity"):
        store.record_decision(_decision("L1", propensity=propensity))


def test_given_decisions_when_some_are_written_then_only_the_others_stay_unwritten(store: Store) -> None:
    for i in range(4):
        store.record_decision(_decision(f"L{i}", decided_at=T0 + timedelta(minutes=i)))
    assert store.mark_written(["L0", "L2", "never-seen"], T0 + timedelta(hours=1)) == 2
    assert [a.lead_id for a in store.unwritten_decisions()] == ["L1", "L3"]
    assert [a.lead_id for a in store.unwritten_decisions(limit=1)] == ["L1"]
    assert store.assignments(["L0"])[0].written_at == T0 + timedelta(hours=1)
    assert store.lead_state(["L0"])["L0"].status == "written"
    assert [a.lead_id for a in store.assignments(since=T0 + timedelta(minutes=2))] == ["L2", "L3"]


# ---------------------------------------------------------------- outcomes and load
def test_given_an_outcome_when_applied_twice_then_only_the_first_counts(store: Store) -> None:
    store.record_decision(_decision("L1"))
    closed = T0 + timedelta(days=57)
    assert store.apply_outcome("L1", True, closed) is True
    assert store.apply_outcome("L1", False, closed + timedelta(days=1)) is False
    assert store.apply_outcome("unknown-lead", True, closed) is False
    (a,) = store.assignments(["L1"])
    assert (a.outcome, a.outcome_at, a.reward_applied_at) == ("won", closed, closed)


def test_given_concurrent_reward_jobs_when_applying_one_outcome_then_exactly_one_applies(
    store: Store,
) -> None:
    store.record_decision(_decision("L1"))
    results = _race(lambda _: store.apply_outcome("L1", True, T0), threads=6)
    assert sorted(results) == [False] * 5 + [True]


def test_given_open_and_closed_assignments_then_rep_load_counts_only_open_real_ones(store: Store) -> None:
    store.record_decision(_decision("L1", "r1"))
    store.record_decision(_decision("L2", "r1"))
    store.record_decision(_decision("L3", "r2", decided_at=T0 + timedelta(days=1)))
    store.record_decision(_decision("L4", None, propensity=1.0))  # fallback queue
    store.record_decision(_decision("L5", "r2", shadow=True))
    store.apply_outcome("L2", False, T0 + timedelta(days=14))

    assert store.rep_load() == {"r1": 1, "r2": 1}
    assert store.rep_load(include_shadow=True) == {"r1": 1, "r2": 2}
    assert store.assigned_since(T0 + timedelta(hours=12)) == {"r2": 1}
    assert store.for_crm("hubspot").rep_load() == {}


# ---------------------------------------------------------------- policy state, runs, models
def test_given_saved_policy_states_then_the_latest_loads_and_history_is_kept_up_to_keep(store: Store) -> None:
    assert store.load_policy_state("contextual") is None
    versions = [
        store.save_policy_state("contextual", {"n": i}, T0 + timedelta(minutes=i), keep=3) for i in range(5)
    ]
    assert versions == [1, 2, 3, 4, 5]
    latest = store.load_policy_state("contextual")
    assert latest is not None and (latest.version, latest.state, latest.saved_at) == (
        5,
        {"n": 4},
        T0 + timedelta(minutes=4),
    )
    assert [v for v, _ in store.policy_versions("contextual")] == [3, 4, 5]
    old = store.load_policy_state("contextual", version=3)
    assert old is not None and old.state == {"n": 2}
    assert store.load_policy_state("contextual", version=1) is None


def test_given_runs_when_finished_then_recent_runs_lists_them_newest_first(store: Store) -> None:
    first = store.start_run("sync", T0)
    store.finish_run(
        first, T0 + timedelta(seconds=30), counts={"pulled": 10}, api_calls={"read": 2, "write": 1}
    )
    second = store.start_run("rewards", T0 + timedelta(minutes=5))
    store.finish_run(second, T0 + timedelta(minutes=6), status="failed", errors="REQUEST_LIMIT_EXCEEDED")
    running = store.start_run("sync", T0 + timedelta(minutes=10))

    runs = store.recent_runs()
    assert [r.id for r in runs] == [running, second, first]
    assert runs[0].status == "running" and runs[0].finished_at is None
    assert (runs[2].counts, runs[2].api_calls) == ({"pulled": 10}, {"read": 2, "write": 1})
    assert [r.id for r in store.recent_runs(kind="sync", limit=1)] == [running]
    with pytest.raises(KeyError):
        store.finish_run(9999, T0)


def test_given_models_when_promoted_then_exactly_one_champion_and_rollback_works(store: Store) -> None:
    assert store.champion() is None
    store.add_model("m1", "/models/m1.joblib", {"roc_auc": 0.71}, T0, status="champion")
    store.add_model("m2", "/models/m2.joblib", {"roc_auc": 0.74}, T0 + timedelta(days=7))
    assert store.champion() is not None and store.champion().version == "m1"  # type: ignore[union-attr]

    store.set_model_status("m2", "champion", T0 + timedelta(days=7, hours=1))
    assert [m.version for m in store.list_models("champion")] == ["m2"]
    assert store.get_model("m1").status == "retired"  # type: ignore[union-attr]

    store.set_model_status("m1", "champion", T0 + timedelta(days=8))  # rollback
    assert [(m.version, m.status) for m in store.list_models()] == [("m2", "retired"), ("m1", "champion")]
    assert store.get_model("m2").metrics == {"roc_auc": 0.74}  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        store.set_model_status("m9", "champion", T0)
    with pytest.raises(ValueError, match="not one of"):
        store.set_model_status("m1", "best", T0)


def _race(work: Callable[[int], bool], threads: int) -> list[bool]:
    """Run ``work`` in several threads released at once; their results."""
    barrier = threading.Barrier(threads)
    results: list[bool] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        outcome = work(i)
        with lock:
            results.append(outcome)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    return results
