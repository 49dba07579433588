"""``make_policy(name, seed=..., **options)``: the one way to build a policy by name.

With no options it builds the daemon's policy (``allocation.options``); ``bare_policy`` builds
the textbook one (no floors, no capacity price, contextual by Thompson sampling).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from allocation.base import Policy
from allocation.contextual import ContextualPolicy
from allocation.options import BARE_OPTIONS, PolicyOptions
from allocation.round_robin import RoundRobin, UniformRandom
from allocation.thompson import BetaThompson
from allocation.ucb1 import UCB1

POLICIES: dict[str, type[Policy]] = {
    "round_robin": RoundRobin,
    "random": UniformRandom,
    "ucb1": UCB1,
    "thompson": BetaThompson,
    "contextual": ContextualPolicy,
}
_COMMON = {"seed", "exploration_floor", "fairness_floor", "fairness_scale", "posterior_exploration", "discount", "capacity_price", "capacity_target"}


def make_policy(name: str, seed: int = 0, **kwargs: Any) -> Policy:
    """Build a policy: common options (seed, exploration_floor, fairness_floor, fairness_scale,
    discount, capacity_price, capacity_target) plus the policy's own parameters (e.g. ``c`` for ucb1, ``mode`` for contextual).

    Options left out take ``PolicyOptions``' defaults, the daemon's: ``make_policy("contextual")``
    is the policy ``leadpilot run`` routes with when the admin sets nothing.
    """
    cls = POLICIES.get(name)
    if cls is None:
        raise ValueError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}")
    common = {k: v for k, v in kwargs.items() if k in _COMMON}
    own = {k: v for k, v in kwargs.items() if k not in _COMMON}
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "options"}
    unknown = set(own) - allowed
    if unknown:
        raise ValueError(f"policy {name!r} has no option(s) {sorted(unknown)}; it accepts {sorted(allowed | _COMMON)}")
    return cls(PolicyOptions(seed=seed, **common), **own)


def bare_policy(name: str, seed: int = 0, **kwargs: Any) -> Policy:
    """``make_policy`` from the textbook defaults: ``BARE_OPTIONS`` (no exploration floor, no
    fairness floor, no capacity price) and, for the contextual policy, Thompson sampling.

    These were the library's defaults before the daemon's became them; baselines, off-policy
    candidates and saved states written before an option existed keep meaning them.
    """
    own = {"mode": "thompson"} if name == "contextual" else {}
    return make_policy(name, seed=seed, **{**BARE_OPTIONS, **own, **kwargs})


def policy_to_state(policy: Policy) -> dict[str, Any]:
    """Name, options, parameters and learned state, all JSON-ready."""
    opts = policy.options
    return {
        "name": policy.name,
        "options": {
            "seed": opts.seed,
            "exploration_floor": opts.exploration_floor,
            "fairness_floor": opts.fairness_floor,
            "fairness_scale": opts.fairness_scale,
            "posterior_exploration": opts.posterior_exploration,
            "discount": opts.discount,
            "capacity_price": opts.capacity_price,
            "capacity_target": opts.capacity_target,
        },
        "params": policy.params(),
        "fitted": policy.fitted_state(),
    }


def policy_from_state(state: Mapping[str, Any]) -> Policy:
    """Inverse of ``policy_to_state``.

    A state stores every option and parameter explicitly; one written before an option existed
    lacks it and ran without it, so a missing key means the bare default, never today's.
    """
    options = dict(state["options"])
    seed = options.pop("seed")
    policy = bare_policy(state["name"], seed=seed, **{**options, **state["params"]})
    policy.load_fitted_state(state["fitted"])
    return policy
