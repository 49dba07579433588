"""Router contract: exact seeded choices, exclusions with reasons, outcomes once, state round-trip."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from allocation import DelayModel, RepConfig, Router, Territory, TerritoryRule, bare_policy
from allocation.base import BetaIndex, Deterministic, GaussianIndex, PolicyOptions
from allocation.propensity import choice_probabilities

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def _reps(n: int = 3, **kw: object) -> list[RepConfig]:
    return [RepConfig(id=f"r{i}", **kw) for i in range(1, n + 1)]  # type: ignore[arg-type]


def test_given_round_robin_when_assigning_then_rotates_in_order() -> None:
    router = Router(policy=bare_policy("round_robin"), reps=_reps())
    chosen = [router.assign(f"L{i}", {}, T0 + timedelta(minutes=i)).rep for i in range(7)]
    assert chosen == ["r1", "r2", "r3", "r1", "r2", "r3", "r1"]
    assert router.assign("L7", {}, T0).propensity == 1.0


def test_given_rep_back_from_vacation_when_round_robin_then_one_lead_not_a_burst() -> None:
    reps = [RepConfig(id="r1"), RepConfig(id="r2", out_of_office=((date(2026, 3, 2), date(2026, 3, 2)),)), RepConfig(id="r3")]
    router = Router(policy=bare_policy("round_robin"), reps=reps)
    away = [router.assign(f"A{i}", {}, T0).rep for i in range(6)]
    assert away == ["r1", "r3"] * 3
    back = [router.assign(f"B{i}", {}, T0 + timedelta(days=1)).rep for i in range(6)]
    assert back == ["r2", "r1", "r3", "r2", "r1", "r3"]


def test_given_unseen_reps_when_ucb1_then_unseen_first_then_mean_plus_bonus() -> None:
    router = Router(policy=bare_policy("ucb1", c=1.0), reps=_reps())
    first = [router.assign(f"L{i}", {}, T0).rep for i in range(3)]
    assert first == ["r1", "r1", "r1"]  # nothing learned before a tick: all unseen, first wins
    for lead, won in [("L0", True), ("L1", False), ("L2", False)]:
        assert router.record_outcome(lead, won, T0 + timedelta(days=1))
    router.tick(T0 + timedelta(days=1))
    assert [router.assign(f"M{i}", {}, T0 + timedelta(days=1)).rep for i in range(2)] == ["r2", "r2"]
    idx = router.policy.index(["r1"], {})
    assert idx.scores[0] == pytest.approx(1 / 3 + np.sqrt(2 * np.log(3) / 3))  # type: ignore[union-attr]


def test_given_same_seed_when_thompson_then_same_choices_and_counts() -> None:
    def run(seed: int) -> list[str | None]:
        router = Router(policy=bare_policy("thompson", seed=seed), reps=_reps(4))
        out = []
        for i in range(200):
            now = T0 + timedelta(hours=i)
            d = router.assign(f"L{i}", {}, now)
            out.append(d.rep)
            router.record_outcome(f"L{i}", d.rep == "r3" or i % 3 == 0, now)
            if i % 24 == 0:
                router.tick(now)
        return out

    a, b = run(7), run(7)
    assert a == b
    assert a.count("r3") > max(a.count(r) for r in ("r1", "r2", "r4"))  # r3 always wins: learned


def test_given_indices_when_exact_propensities_then_sum_to_one_and_match_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    for index in (GaussianIndex(rng.normal(0, 0.3, 12), rng.uniform(0.02, 0.4, 12)), BetaIndex(rng.uniform(5, 90, 12), rng.uniform(5, 90, 12))):
        bonus = rng.uniform(0, 0.05, 12)
        exact = choice_probabilities(index, bonus, 0.1)
        mc = choice_probabilities(index, bonus, 0.1, method="mc", rng=rng, draws=100_000)
        assert exact.sum() == pytest.approx(1.0)
        assert np.abs(exact - mc).max() < 0.01
        assert exact.min() >= 0.1 / 12 - 1e-12


def test_given_posterior_exploration_when_greedy_then_mixture_of_argmax_thompson_and_floor() -> None:
    rng = np.random.default_rng(4)
    mean, sd, bonus = rng.normal(0, 0.3, 10), rng.uniform(0.05, 0.4, 10), rng.uniform(0, 0.05, 10)
    probs = choice_probabilities(Deterministic(mean, sd), bonus, 0.02, posterior_share=0.2)
    thompson = choice_probabilities(GaussianIndex(mean + bonus, sd), method="mc", rng=rng, draws=200_000)
    best = int(np.argmax(mean + bonus))
    expected = 0.2 * thompson + 0.02 / 10
    expected[best] += 0.78
    assert probs.sum() == pytest.approx(1.0)
    assert np.abs(probs - expected).max() < 0.01 * 0.2 + 1e-9  # Thompson share exact to MC noise
    assert probs.min() >= 0.02 / 10 - 1e-12
    # without posterior SDs (round robin, UCB1) the share has nothing to sample: plain argmax
    plain = choice_probabilities(Deterministic(mean), bonus, 0.02, posterior_share=0.2)
    assert plain[best] == pytest.approx(0.98 + 0.002) and plain.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="posterior_exploration"):
        PolicyOptions(exploration_floor=0.5, posterior_exploration=0.5)


def test_given_contextual_decision_then_probabilities_sum_to_one_and_propensity_is_chosen_entry() -> None:
    router = Router(policy=bare_policy("contextual", seed=1, fairness_floor=0.8, exploration_floor=0.1), reps=_reps(5))
    for i in range(60):
        d = router.assign(f"L{i}", {"sector": "retail" if i % 2 else "tech", "employees": float(i)}, T0 + timedelta(hours=i))
        assert sum(d.probabilities.values()) == pytest.approx(1.0)
        assert d.propensity == pytest.approx(d.probabilities[d.rep])  # type: ignore[index]
        router.record_outcome(f"L{i}", (i % 5 == 0) == (d.rep == "r2"), T0 + timedelta(hours=i))
        if i % 10 == 9:
            router.tick(T0 + timedelta(hours=i))


def test_given_constraints_when_assigning_then_each_exclusion_has_its_reason() -> None:
    reps = [
        RepConfig(id="terr", territories=(Territory("na", (TerritoryRule("country", values=("US", "CA")), TerritoryRule("employees", min=50, max=500))),)),
        RepConfig(id="full", max_open=1),
        RepConfig(id="daily", max_per_day=1),
        RepConfig(id="night", timezone="Asia/Tokyo", working_hours=("09:00", "17:00")),
        RepConfig(id="away", out_of_office=(("2026-03-01", "2026-03-05"),)),
        RepConfig(id="gone", active=False),
    ]
    router = Router(policy=bare_policy("round_robin"), reps=reps, fallback="queue:triage")
    router.sync_open({"full": 1})
    router.day_counts["daily"] = ("2026-03-02", 1)
    d = router.assign("L1", {"country": "de", "employees": 100.0}, T0)
    assert d.rep is None and d.fallback == "queue:triage" and d.eligible == ()
    assert d.excluded == {
        "terr": "outside territory na: country de not in (US, CA)",
        "full": "at capacity: 1 open of max 1",
        "daily": "daily cap reached: 1 today of max 1",
        "night": "outside working hours (19:00 in Asia/Tokyo, works 09:00-17:00)",
        "away": "out of office 2026-03-01 to 2026-03-05",
        "gone": "inactive",
    }
    assert "fallback queue 'queue:triage'" in d.reason
    ok = router.assign("L2", {"country": "ca", "employees": 100.0}, T0)
    assert ok.rep == "terr" and ok.propensity == 1.0


def test_given_outcome_when_recorded_twice_then_applied_once_and_capacity_freed() -> None:
    router = Router(policy=bare_policy("round_robin"), reps=_reps(1, max_open=1))
    assert router.assign("L1", {}, T0).rep == "r1"
    assert router.assign("L2", {}, T0).rep is None
    assert router.record_outcome("L1", True, T0) is True
    assert router.record_outcome("L1", False, T0) is False
    assert router.record_outcome("nope", True, T0) is False
    assert router.assign("L3", {}, T0).rep == "r1"
    with pytest.raises(ValueError, match="already assigned"):
        router.assign("L3", {}, T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        router.assign("L4", {}, datetime(2026, 1, 1))


def test_given_fairness_floor_when_one_rep_dominates_then_every_rep_gets_its_floor() -> None:
    router = Router(policy=bare_policy("ucb1", fairness_floor=0.8, fairness_scale=0.05), reps=_reps(4))
    counts = dict.fromkeys(["r1", "r2", "r3", "r4"], 0)
    for i in range(800):
        now = T0 + timedelta(hours=i)
        d = router.assign(f"L{i}", {}, now)
        counts[d.rep] += 1  # type: ignore[index]
        router.record_outcome(f"L{i}", d.rep == "r1", now)
        if i % 24 == 0:
            router.tick(now)
    # soft floor: a rep's backlog is about (score gap / fairness_scale) leads, here ~20
    assert counts == {"r1": 332, "r2": 161, "r3": 156, "r4": 151}
    assert min(counts.values()) >= 0.8 * 200 - 20


def test_given_state_when_round_tripped_through_json_then_router_continues_identically() -> None:
    delays = DelayModel([30, 60, 90], [5, 10, 20])
    policy = bare_policy("contextual", seed=4, mode="greedy", fairness_floor=0.5, exploration_floor=0.05, posterior_exploration=0.2)
    router = Router(policy=policy, reps=_reps(3, max_open=40), delay_model=delays)
    for i in range(40):
        now = T0 + timedelta(hours=i)
        router.assign(f"L{i}", {"sector": ["a", "b"][i % 2]}, now)
        if i % 3 == 0:
            router.record_outcome(f"L{i - 3}", i % 2 == 0, now)
        if i % 12 == 11:
            router.tick(now)
    clone = Router.from_state(json.loads(json.dumps(router.to_state())))
    assert clone.policy.options == router.policy.options
    for i in range(40, 60):
        now = T0 + timedelta(hours=i)
        a, b = router.assign(f"L{i}", {"sector": "a"}, now), clone.assign(f"L{i}", {"sector": "a"}, now)
        assert (a.rep, a.propensity) == (b.rep, b.propensity)
    with pytest.raises(ValueError, match="version"):
        Router.from_state({**router.to_state(), "version": 99})


def test_given_daemon_store_when_restoring_open_then_capacity_counts_them_and_proxy_applies_once() -> None:
    from allocation import OpenAssignment

    router = Router(policy=bare_policy("round_robin"), reps=_reps(2, max_open=1))
    assert router.restore_open([OpenAssignment("X1", "r1", T0 - timedelta(days=3))]) == 1
    assert router.restore_open([OpenAssignment("X1", "r1", T0 - timedelta(days=3))]) == 0
    assert router.open_load() == {"r1": 1, "r2": 0}
    d = router.assign("L1", {}, T0)
    assert d.rep == "r2" and d.excluded == {"r1": "at capacity: 1 open of max 1"}
    assert router.record_opportunity("L1", T0) is True
    assert router.record_opportunity("L1", T0) is False
    with pytest.raises(ValueError, match="unknown rep"):
        router.sync_open({"nobody": 3})


def test_given_a_lead_removed_in_the_crm_when_forgotten_then_capacity_frees_and_nothing_is_learned() -> None:
    router = Router(policy=bare_policy("round_robin"), reps=_reps(1, max_open=1))
    assert router.assign("L1", {}, T0).rep == "r1"
    assert router.assign("L2", {}, T0).rep is None  # full
    assert router.forget("L1") is True and router.forget("L1") is False and router.forget("nope") is False
    assert "L1" not in router.ledger.row and router.open_load() == {"r1": 0}
    assert router.assign("L3", {}, T0).rep == "r1"
    router.record_outcome("L3", True, T0)
    assert router.forget("L3") is True and router.open_load() == {"r1": 0}  # a closed one frees nothing more
    assert len(router.ledger) == 0
