"""The simulated sales world: seeded, reproducible, with the signal and delays it promises."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest

from sandbox.store import Store
from sandbox.world import params as P
from sandbox.world.leads import make_leads
from sandbox.world.simulation import World


def _world(seed: int = 0, scenario: str = "skilled", leads: int = 0, **kw: object) -> World:
    w = World(Store(), seed=seed, scenario=scenario, **kw)  # type: ignore[arg-type]
    w.populate(leads)
    return w


def _snapshot(w: World) -> list[tuple[object, ...]]:
    return [(r["Id"], r["Email"], r["Description"], r["OwnerId"], r["Status"], r["IsConverted"], r["SystemModstamp"])
            for r in sorted(w.store.all("Lead"), key=lambda r: r["Id"])]


def test_given_the_same_seed_then_the_same_world_and_ground_truth() -> None:
    a, b = _world(7, leads=300), _world(7, leads=300)
    assert _snapshot(a) == _snapshot(b)
    assert a.ground_truth() == b.ground_truth()
    a.advance(timedelta(days=5))
    b.advance(timedelta(days=5))
    assert _snapshot(a) == _snapshot(b)


def test_given_another_seed_then_another_world() -> None:
    assert _snapshot(_world(1, leads=50)) != _snapshot(_world(2, leads=50))


def test_unknown_scenario_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="flat, skilled"):
        World(Store(), scenario="chaotic")


def test_users_are_eight_active_reps_an_integration_user_a_queue_and_a_former_rep() -> None:
    w = _world()
    users = w.store.all("User")
    assert len(w.reps) == 8 and all(w.store.get("User", r)["IsActive"] for r in w.reps)
    assert {u["UserType"] for u in users if u["Id"] == w.queue_id} == {"Queue"}
    assert [u["Name"] for u in users if not u["IsActive"]] == ["Ivan Petrov"]
    assert w.store.get("User", w.integration_user_id)["Username"] == "integration@leadpilot.sandbox"


def test_arrivals_are_poisson_at_the_configured_rate_with_quiet_weekends() -> None:
    w = _world(3, arrivals_per_day=40.0)
    start = w.store.clock.now()
    w.advance(timedelta(days=70))
    created = [r["CreatedDate"] for r in w.store.all("Lead")]
    assert all(start <= c <= start + timedelta(days=70) for c in created)
    assert abs(len(created) - 40 * 70) < 4 * (40 * 70) ** 0.5
    weekday = sum(c.weekday() < 5 for c in created) / 50
    weekend = sum(c.weekday() >= 5 for c in created) / 20
    assert 0.2 < weekend / weekday < 0.4


def test_flat_scenario_gives_every_rep_the_same_probability_and_skilled_does_not() -> None:
    flat, skilled = _world(1, "flat", leads=100), _world(1, "skilled", leads=100)
    for row in flat.ground_truth():
        assert len(set(row["p_convert"].values())) == 1
    spreads = [max(r["p_convert"].values()) - min(r["p_convert"].values()) for r in skilled.ground_truth()]
    assert statistics.mean(spreads) > 0.05
    best = {seg: max(skilled.reps, key=lambda r, s=seg: skilled.reps[r].skill[s]) for seg in skilled.reps[next(iter(skilled.reps))].skill}
    assert len(set(best.values())) > 1  # different reps are best at different segments


def test_intent_cues_carry_signal() -> None:
    import random

    leads = make_leads(random.Random(11), 4000)
    student = [obs for f, _, obs, _, _ in leads if "student" in f["Description"].lower() or "学生" in f["Description"]]
    budget = [obs for f, _, obs, _, _ in leads if "budget is approved" in f["Description"].lower()
              or "budget allocated" in f["Description"].lower()]
    rest = [obs for f, _, obs, _, _ in leads]
    assert statistics.mean(student) < statistics.mean(rest) - 1.0
    assert statistics.mean(budget) > statistics.mean(rest) + 0.5
    chinese = sum(any("\u4e00" <= ch <= "\u9fff" for ch in f["Description"]) for f, *_ in leads) / len(leads)
    assert 0.05 < chinese < 0.2
    assert any("200 seats" in f["Description"] for f, *_ in leads)


def test_an_unowned_lead_waits_and_an_owned_one_plays_out() -> None:
    w = _world(5, arrivals_per_day=30.0)
    w.advance(timedelta(days=1))
    queued = [r for r in w.store.all("Lead") if r["OwnerId"] == w.queue_id]
    assert queued and all(r["Status"] == "Open - Not Contacted" for r in queued)
    rep = sorted(w.reps)[0]
    for r in queued:
        w.store.update("Lead", r["Id"], {"OwnerId": rep})  # as an API write would
    w.advance(timedelta(days=200))
    for r in queued:
        truth = w.truth[r["Id"]]
        assert truth.rep == rep and truth.converted == (truth.u[0] < w.p_convert(r["Id"], rep))
        lead = w.store.get("Lead", r["Id"])
        if truth.converted:
            opp = w.store.get("Opportunity", lead["ConvertedOpportunityId"])
            assert lead["IsConverted"] and opp["IsClosed"] and opp["IsWon"] == truth.won and opp["OwnerId"] == rep
            assert w.store.opportunity_lead[opp["Id"]] == r["Id"]
        else:
            assert lead["Status"] == "Closed - Not Converted" and not lead["IsConverted"]


def test_preloaded_history_has_a_realistic_share_converted_and_closed() -> None:
    w = _world(2, leads=3000)
    leads = w.store.all("Lead")
    converted = sum(r["IsConverted"] for r in leads) / len(leads)
    assert 0.1 < converted < 0.3
    opps = w.store.all("Opportunity")
    closed = [o for o in opps if o["IsClosed"]]
    assert len(closed) > 0.3 * len(opps)  # deal cycles run up to 138 days: many of 90 days of history are still open
    assert 0.5 < sum(o["IsWon"] for o in closed) / len(closed) < 0.8
    now = w.store.clock.now()
    recent = [r for r in leads if now - r["CreatedDate"] < timedelta(days=P.UNROUTED_RECENT_DAYS)]
    assert recent and all(r["OwnerId"] == w.queue_id for r in recent)
    assigned = {w.truth[r["Id"]].rep for r in leads if w.truth[r["Id"]].rep}
    assert assigned == set(w.reps)  # history routed at random: every rep has a track record


def test_deal_close_delays_follow_the_fitted_distributions() -> None:
    w = _world(4, "flat", leads=6000)
    w.advance(timedelta(days=160))  # let open opportunities close
    won, lost = [], []
    for oid, lid in w.store.opportunity_lead.items():
        opp, lead = w.store.get("Opportunity", oid), w.store.get("Lead", lid)
        if opp["IsClosed"]:
            days = (opp["CloseDate"] - lead["ConvertedDate"]).days
            (won if opp["IsWon"] else lost).append(days)
    assert len(won) > 200 and len(lost) > 100
    assert abs(statistics.median(won) - P.WON_DAYS[10]) < 12
    assert abs(statistics.median(lost) - P.LOST_DAYS[10]) < 10
    assert max(won + lost) <= P.WON_DAYS[-1] + 1
