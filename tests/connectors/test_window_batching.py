"""Watermark windows, HubSpot re-windowing, batched writes with later-round retries, usage parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.batching import unique_updates, write_in_rounds
from connectors.errors import StopCycle
from connectors.hubspot.client import BurstPacer, search_all
from connectors.records import LeadUpdate, WriteResult
from connectors.salesforce.errors import SALESFORCE
from connectors.usage import UsageMeter, parse_hubspot_headers, parse_sforce_limit_info
from connectors.window import Dedup, SearchWindow, must_rewindow, query_start, search_limit_problem

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_query_start_subtracts_the_lookback() -> None:
    assert query_start(None, 600) is None
    assert query_start(T0, 600) == T0 - timedelta(minutes=10)


def test_dedup_passes_a_record_again_only_when_its_modstamp_changed() -> None:
    d = Dedup()
    assert [d.fresh("a", 1), d.fresh("a", 1), d.fresh("a", 2), d.fresh("b", 1)] == [True, False, True, True]


def test_search_window_filters_and_tie_breaker() -> None:
    assert SearchWindow().filter_groups("lastmodifieddate") == []
    assert SearchWindow().sorts("x") == [{"propertyName": "x", "direction": "ASCENDING"}]
    assert SearchWindow(5).filter_groups("x") == [{"filters": [{"propertyName": "x", "operator": "GTE", "value": "5"}]}]
    w = SearchWindow(5).next(5, "77", first_ms=5)  # a whole window inside one millisecond: read it by id
    assert w == SearchWindow(5, "within")
    assert w.sorts("x") == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]  # still ONE sort
    assert w.filter_groups("x") == [{"filters": [{"propertyName": "x", "operator": "EQ", "value": "5"}]}]
    w2 = w.next(5, "177", first_ms=5)  # that millisecond cut again: continue after the last id (a filter)
    assert w2 == SearchWindow(5, "within", "177")
    assert w2.filter_groups("x")[0]["filters"][1] == {"propertyName": "hs_object_id", "operator": "GT", "value": "177"}
    assert w2.after_drained() == SearchWindow(5, "after")  # then what follows that millisecond
    assert SearchWindow(5, "after").filter_groups("x")[0]["filters"] == [{"propertyName": "x", "operator": "GT", "value": "5"}]
    assert SearchWindow(5).after_drained() is None
    assert SearchWindow(5).next(9, "3", first_ms=6) == SearchWindow(9)
    assert SearchWindow(5).next(5, "3", first_ms=None) == SearchWindow(5, "within")  # no progress: by id
    extra = [{"propertyName": "createdate", "operator": "LT", "value": "9"}]
    assert SearchWindow(5, "within", "7").filter_groups("x", extra)[0]["filters"][-1] == extra[0]
    assert SearchWindow().filter_groups("x", extra) == [{"filters": extra}]
    assert must_rewindow(9_800, 200) is False and must_rewindow(9_801, 200) is True


@pytest.mark.parametrize(("body", "problem"), [
    ({"sorts": [{"propertyName": "a"}, {"propertyName": "b"}], "limit": 200}, "2 sorting rules; HubSpot takes 1"),
    ({"filterGroups": [{"filters": []}] * 6, "limit": 1}, "6 filter groups"),
    ({"filterGroups": [{"filters": [{}] * 11}], "limit": 1}, "a filter group of 11 filters"),
    ({"filterGroups": [{"filters": [{}] * 9}] * 3, "limit": 1}, "27 filters; HubSpot takes at most 25"),
    ({"limit": 201}, "limit 201; HubSpot takes 1 to 200"),
    ({"filterGroups": [{"filters": [{}] * 10}, {"filters": [{}] * 10}, {"filters": [{}] * 5}],
      "sorts": [{"propertyName": "a"}], "limit": 200}, None),
])
def test_search_limits_are_checked_before_sending(body: dict[str, Any], problem: str | None) -> None:
    got = search_limit_problem(body)
    assert got == problem if problem is None else problem in str(got)


class FakeSearch:
    """A HubSpot-like search over (stamp_ms, id) records with the search cap, for the windowing logic.

    Like the real API it takes ONE sorting rule and leaves records that tie on it in no defined
    order (here: shuffled, seeded), so the windowing cannot lean on an id order it was not asked for.
    """

    def __init__(self, records: list[tuple[int, int]], cap: int = 10_000) -> None:
        self.records, self.cap = list(records), cap
        self.bodies: list[dict[str, Any]] = []
        self.cache: dict[str, list[tuple[int, int]]] = {}

    def __call__(self, body: dict[str, Any]) -> Any:
        def run() -> dict[str, Any]:
            self.bodies.append(body)
            assert search_limit_problem(body) is None
            (sort,) = body["sorts"]
            key = repr((body["filterGroups"], sort))
            if key not in self.cache:  # one filter and sort per query, then slicing, like a real index
                hits = [r for r in self.records if self._match(r, body["filterGroups"])]
                random.Random(len(self.cache)).shuffle(hits)
                col = 1 if sort["propertyName"] == "hs_object_id" else 0
                self.cache[key] = sorted(hits, key=lambda r: r[col])  # stable: ties stay shuffled
            hits = self.cache[key]
            after = int(body.get("after", 0))
            assert after < self.cap, "paged past the cap"
            page = hits[after : after + body["limit"]]
            out: dict[str, Any] = {"total": len(hits),
                                   "results": [{"id": str(i), "properties": {"lastmodifieddate": str(ms)}}
                                               for ms, i in page]}
            end = after + len(page)
            if end < min(len(hits), self.cap):
                out["paging"] = {"next": {"after": str(end)}}
            return out
        return run

    @staticmethod
    def _match(r: tuple[int, int], groups: list[dict[str, Any]]) -> bool:
        if not groups:
            return True
        ops = {"GTE": lambda a, b: a >= b, "GT": lambda a, b: a > b, "EQ": lambda a, b: a == b}
        def ok(f: dict[str, Any]) -> bool:
            val = r[0] if f["propertyName"] != "hs_object_id" else r[1]
            return ops[f["operator"]](val, int(f["value"]))
        return any(all(ok(f) for f in g["filters"]) for g in groups)


# Sized for the cap at 1,000 (``small_search_cap``): the same shapes as 21,000 / 12,000 / 25,000
# records under the real 10,000.
@pytest.mark.parametrize("records", [
    [(1000 + i // 3, i) for i in range(2_100)],  # three records per millisecond, past two caps
    [(1000, i) for i in range(1_200)] + [(2000, 20_000 + i) for i in range(50)],  # 1.2 caps in one millisecond
    [(500, 90_000 + i) for i in range(30)] + [(1000, i) for i in range(2_500)]  # 2.5 caps in one ms, after others
    + [(1000 + (i % 7), 40_000 + i) for i in range(300)],
])
def test_given_more_than_10000_changes_when_searching_then_rewindowed_and_nothing_lost(
        records: list[tuple[int, int]], small_search_cap: int) -> None:
    cap = small_search_cap
    fake = FakeSearch(records, cap)
    got = list(search_all(lambda op, fn: fn(), fake, "lastmodifieddate", 0, ["x"]))
    ids = {o["id"] for _, o in got}
    assert ids == {str(i) for _, i in records}
    assert all(len(b["sorts"]) == 1 for b in fake.bodies)
    crowded = max(sum(1 for r in records if r[0] == ms) for ms in {r[0] for r in records})
    # only records of edge milliseconds are read twice: one cut millisecond re-read, at most
    assert len(got) - len(ids) <= (cap if crowded >= cap - 200 else 50) * 3
    assert len(fake.bodies) >= len(records) // 200


def updates(n: int) -> list[LeadUpdate]:
    return [LeadUpdate(f"L{i}", score=i) for i in range(n)]


def test_given_locked_rows_when_writing_then_they_go_again_together_in_a_later_round() -> None:
    sent: list[list[str]] = []
    locked_once = {"L3", "L250"}

    def send(batch: list[LeadUpdate]) -> list[WriteResult]:
        sent.append([u.lead_id for u in batch])
        out = []
        for u in batch:
            if u.lead_id in locked_once:
                locked_once.discard(u.lead_id)
                out.append(WriteResult(u.lead_id, False, "UNABLE_TO_LOCK_ROW", "locked", transient=True))
            elif u.lead_id == "L7":
                out.append(WriteResult(u.lead_id, False, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "bad value"))
            else:
                out.append(WriteResult(u.lead_id, True))
        return out

    pauses: list[int] = []
    report = write_in_rounds(updates(300) + [LeadUpdate("L5", score=99)], send, 200, pause=pauses.append)
    assert [len(b) for b in sent] == [200, 100, 2] and sent[2] == ["L3", "L250"] and pauses == [1]
    assert len(report.results) == 300 and len(report.succeeded) == 299
    assert report.failed[0].lead_id == "L7" and report.failed[0].message == "bad value"


def test_given_a_budget_stop_mid_write_when_writing_then_every_lead_is_accounted_for() -> None:
    def send(batch: list[LeadUpdate]) -> list[WriteResult]:
        if batch[0].lead_id == "L200":
            raise SALESFORCE.make_error("write", 403, "REQUEST_LIMIT_EXCEEDED", "limit", now=T0)
        return [WriteResult(u.lead_id, True) for u in batch]

    with pytest.raises(StopCycle) as info:
        write_in_rounds(updates(500), send, 200)
    report = info.value.report  # type: ignore[attr-defined]
    assert len(report.succeeded) == 200 and len(report.failed) == 300
    assert all(r.transient and r.error_code == "REQUEST_LIMIT_EXCEEDED" for r in report.failed)


def test_unique_updates_keeps_the_last_per_lead() -> None:
    got = unique_updates([LeadUpdate("a", score=1), LeadUpdate("b"), LeadUpdate("a", score=2)])
    assert [(u.lead_id, u.score) for u in got] == [("a", 2), ("b", None)]


def test_budget_headers_parse() -> None:
    b = parse_sforce_limit_info("api-usage=18/15000; per-app-api-usage=17/250(appName=x)")
    assert b is not None and (b.used, b.limit, b.remaining) == (18, 15000, 14982)
    assert parse_sforce_limit_info("garbage") is None
    h = parse_hubspot_headers({"X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "249000"})
    assert h is not None and (h.used, h.remaining, h.fraction_left) == (1000, 249000, 0.996)
    m = UsageMeter()
    m.record("read")
    m.record("auth")
    assert m.snapshot() == {"read": 1, "write": 0, "meta": 0, "auth": 1}
    with pytest.raises(ValueError, match="unknown API call kind"):
        m.record("other")


def test_burst_pacer_waits_only_when_the_window_is_full() -> None:
    t = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        t[0] += s

    pacer = BurstPacer(sleep, lambda: t[0], max_calls=3, interval=10)
    for _ in range(3):
        pacer.before_call()
        t[0] += 1
    pacer.before_call()
    assert len(sleeps) == 1 and 7 < sleeps[0] < 8
    pacer.learn({"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert (pacer.max_calls, pacer.interval) == (190, 10.0)
