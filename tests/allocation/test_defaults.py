"""One set of routing defaults (the daemon's, in ``allocation.options``); the textbook policy
on request; saved states restore exactly the options they ran with; one working-hours check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest

from allocation import (
    POLICIES,
    PolicyOptions,
    RepConfig,
    Router,
    bare_policy,
    make_policy,
    parse_working_hours,
)
from allocation.registry import policy_from_state, policy_to_state

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_given_no_options_when_make_policy_then_the_measured_defaults(name: str) -> None:
    options = make_policy(name).options
    assert (options.seed, options.exploration_floor, options.fairness_floor, options.fairness_scale) == (0, 0.05, 0.8, None)
    assert (options.posterior_exploration, options.discount, options.capacity_target) == (0.0, 1.0, 0.9)
    assert options.capacity_price == (0.002 if name == "contextual" else 0.0)  # resolved per policy
    assert make_policy(name, capacity_price=0.01).options.capacity_price == 0.01


def test_given_contextual_when_no_mode_then_greedy_and_bare_policy_is_the_old_thompson() -> None:
    assert make_policy("contextual").params()["mode"] == "greedy"
    bare = bare_policy("contextual", seed=3)
    assert bare.params()["mode"] == "thompson"
    assert bare.options == PolicyOptions(seed=3, exploration_floor=0.0, fairness_floor=0.0, capacity_price=0.0)
    assert bare_policy("ucb1", fairness_floor=0.5).options.fairness_floor == 0.5  # options still win


def _trained(policy_name: str, **options: object) -> Router:
    router = Router(policy=make_policy(policy_name, seed=2, **options), reps=[RepConfig(id=f"r{i}", max_open=5) for i in range(3)])
    for i in range(12):
        router.assign(f"L{i}", {"sector": "ab"[i % 2]}, T0 + timedelta(hours=i))
    router.record_outcome("L0", True, T0 + timedelta(days=1))
    router.tick(T0 + timedelta(days=1))
    return router


@pytest.mark.parametrize("price", [0.0, 0.002, 0.05])
def test_given_a_saved_capacity_price_when_reloaded_then_exactly_that_price(price: float) -> None:
    router = _trained("contextual", capacity_price=price, mode="thompson", exploration_floor=0.0)
    state = json.loads(json.dumps(router.to_state()))
    assert state["policy"]["options"]["capacity_price"] == price  # every option stored explicitly
    clone = Router.from_state(state)
    assert clone.policy.options == router.policy.options and clone.policy.params() == router.policy.params()
    assert clone.policy.capacity_price == price


def test_given_a_state_from_before_an_option_existed_when_loaded_then_it_runs_without_it() -> None:
    state = policy_to_state(_trained("contextual").policy)
    old = {**state, "options": {k: v for k, v in state["options"].items() if k in ("seed", "fairness_scale", "discount")},
           "params": {k: v for k, v in state["params"].items() if k != "mode"}}
    policy = policy_from_state(old)
    assert policy.options == PolicyOptions(seed=2, exploration_floor=0.0, fairness_floor=0.0, capacity_price=0.0)
    assert policy.params()["mode"] == "thompson"  # the old library default, not today's


@pytest.mark.parametrize(
    ("span", "parsed"),
    [("09:00-17:30", (time(9), time(17, 30))), (("08:30", "17:00"), (time(8, 30), time(17))), ("00:00-23:59", (time(0), time(23, 59)))],
)
def test_given_a_daytime_span_when_parsed_then_start_and_end(span: str | tuple[str, str], parsed: tuple[time, time]) -> None:
    assert parse_working_hours(span) == parsed


@pytest.mark.parametrize("span", ["17:00-08:30", "09:00-09:00", "9:00-17:00", "09:00-24:00", "09:00 - 17:00", ("09:00:00", "17:00:00"), "09:00"])
def test_given_a_bad_span_when_parsed_then_one_message_naming_it(span: str | tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="is not a daytime span HH:MM-HH:MM with start before end"):
        parse_working_hours(span)
    with pytest.raises(ValueError, match=r"^rep r1: working_hours '.*' is not a daytime span"):
        RepConfig(id="r1", working_hours=span if isinstance(span, tuple) else (span[:5], span[6:]))
