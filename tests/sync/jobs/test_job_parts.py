"""The jobs' shared parts on their own: the run bookkeeping (``job_run``), the cycle's watermark
tracker and the owner re-check. The end-to-end job tests cover them wired together."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from connectors.base import Connector
from sync.jobs.cycle import CycleReport
from sync.jobs.owners import OwnerRules, recheck_owners
from sync.jobs.report import job_run
from sync.jobs.retrain import RetrainReport
from sync.jobs.watermark import Watermark
from sync.ops.metrics import Metrics
from sync.store import Store
from sync.wiring.deps import Deps

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# ---------------------------------------------------------------- job_run: the run history and metrics
class _Usage:
    def __init__(self) -> None:
        self.calls = {"query": 3}

    def api_usage(self) -> dict[str, int]:
        return dict(self.calls)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url, crm="salesforce")
    yield opened
    opened.close()


def _deps(store: Store, *, dry_run: bool = False) -> Any:
    return SimpleNamespace(connector=_Usage(), store=store, clock=lambda: T0 + timedelta(minutes=1),
                           dry_run=dry_run, metrics=Metrics(), crm="salesforce")


def test_given_a_stopped_run_when_it_closes_then_the_history_keeps_counts_api_calls_and_why(store: Store) -> None:
    deps = _deps(store)
    report = CycleReport(started_at=T0, mode="live")
    with job_run(cast(Deps, deps), report, "sync"):
        deps.connector.calls = {"query": 5, "write": 1}
        report.pulled, report.stopped = 7, "stop requested"
    run = store.recent_runs(kind="sync")[0]
    assert (run.status, run.counts["pulled"], run.api_calls, run.errors) == ("stopped", 7, {"query": 2, "write": 1},
                                                                             "stop requested")
    assert report.api_calls == {"query": 2, "write": 1} and report.finished_at == T0 + timedelta(minutes=1)
    assert deps.metrics.registry.get_sample_value("leadpilot_last_success_timestamp_seconds", {"org": "default", "job": "sync"}) \
        == (T0 + timedelta(minutes=1)).timestamp()


def test_given_a_retrain_when_it_closes_then_it_is_a_train_run_with_its_reason_and_a_retrain_metric(
    store: Store,
) -> None:
    deps = _deps(store)
    report = RetrainReport(started_at=T0)
    with job_run(cast(Deps, deps), report, "train", job="retrain"):
        report.history, report.cold_start, report.reason = 12, True, "cold start"
    run = store.recent_runs(kind="train")[0]
    assert (run.status, run.errors) == ("ok", "cold start")
    assert report.counts() == {"history": 12, "positives": 0, "promoted": 0, "cold_start": 1}
    assert deps.metrics.registry.get_sample_value("leadpilot_last_success_timestamp_seconds", {"org": "default", "job": "retrain"})


def test_given_a_dry_run_when_it_closes_then_no_run_is_recorded(store: Store) -> None:
    with job_run(cast(Deps, _deps(store, dry_run=True)), CycleReport(started_at=T0), "sync"):
        pass
    assert store.recent_runs() == []


def test_given_a_body_that_crashes_then_its_run_stays_open_like_after_a_kill(store: Store) -> None:
    with pytest.raises(RuntimeError), job_run(cast(Deps, _deps(store)), CycleReport(started_at=T0), "sync"):
        raise RuntimeError("boom")
    assert [(r.status, r.finished_at) for r in store.recent_runs()] == [("running", None)]


# ---------------------------------------------------------------- the cycle's watermark
def test_given_handled_leads_then_the_watermark_moves_to_the_latest_capped_at_the_start() -> None:
    mark = Watermark()
    mark.done(T0 + timedelta(minutes=1))
    mark.done(T0 + timedelta(minutes=9))
    assert mark.value(cap=T0 + timedelta(minutes=5), old=T0) == T0 + timedelta(minutes=5)


def test_given_a_held_lead_then_the_watermark_stops_at_it_and_never_moves_back() -> None:
    mark = Watermark()
    mark.done(T0 + timedelta(minutes=9))
    mark.hold(T0 + timedelta(minutes=4))
    mark.hold(T0 + timedelta(minutes=2))
    assert mark.value(cap=T0 + timedelta(hours=1), old=None) == T0 + timedelta(minutes=2)
    assert mark.value(cap=T0 + timedelta(hours=1), old=T0 + timedelta(minutes=3)) == T0 + timedelta(minutes=3)
    assert Watermark().value(cap=T0, old=None) is None


# ---------------------------------------------------------------- owners
class _Owners:
    def __init__(self, current: dict[str, str | None]) -> None:
        self.current, self.asked = current, 0

    def get_owners(self, lead_ids: Iterable[str]) -> dict[str, str | None]:
        self.asked += 1
        return {lid: self.current.get(lid) for lid in lead_ids}


def test_given_owners_taken_meanwhile_when_rechecked_then_humans_keep_theirs_and_written_ones_are_skipped() -> None:
    crm = _Owners({"L1": None, "L2": "queue", "L3": "human", "L4": "r4"})
    rules = OwnerRules(reassign_from=frozenset({"queue"}))
    keep, conflicts = recheck_owners(cast(Connector, crm), rules,
                                     {"L1": "r1", "L2": "r2", "L3": "r3", "L4": "r4"})
    assert keep == {"L1": "r1", "L2": "r2"} and conflicts == {"L3": "human"}


def test_given_no_owner_to_write_then_the_crm_is_not_asked() -> None:
    crm = _Owners({})
    assert recheck_owners(cast(Connector, crm), OwnerRules(), {}) == ({}, {}) and crm.asked == 0


def test_given_a_decision_when_its_routing_reason_is_written_then_names_and_at_most_255_characters() -> None:
    from datetime import UTC, datetime

    from sync.jobs.owners import routing_reason
    from sync.store.records import Decision

    names = {"005A": "Ana Weber", "005B": "Ben Ortiz"}
    d = Decision(lead_id="L1", rep_id="005A", policy_name="contextual", policy_version=3, propensity=0.4123,
                 decided_at=datetime(2026, 1, 5, tzinfo=UTC),
                 considered={"005A": None, "005B": "outside working hours (02:32 in America/New_York, works 08:30-17:00)"})
    assert routing_reason(d, names) == ("Ana Weber: chosen by contextual (p=0.41) among 1 eligible of 2; "
                                        "Ben Ortiz: outside working hours (02:32 in America/New_York, works 08:30-17:00)")
    many = {f"005{i}": f"outside territory emea: country United States not in (GB, DE) #{i}" for i in range(20)}
    queued = Decision(lead_id="L2", rep_id=None, policy_name="contextual", policy_version=3, propensity=1.0,
                      decided_at=datetime(2026, 1, 5, tzinfo=UTC), considered=many)
    text = routing_reason(queued, {})
    assert len(text) == 255 and text.endswith("…") and text.startswith("Queued: none of 20 reps could take it; 0050: outside")
