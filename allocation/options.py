"""The options every routing policy accepts, with the defaults the daemon runs.

The defaults are the production setting measured on ``benchmarks/routing.py`` (greedy
contextual policy, exploration floor 0.05, fairness floor 0.8, capacity price 0.002 at
ρ = 0.9): a library user gets the same policy as the daemon, whose ``RoutingSettings`` take
their defaults from here. ``BARE_OPTIONS`` turns the guards off (the textbook bandit the
library built before these became the defaults). This module imports no numpy, so settings
can read it without loading the models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

# The contextual policy's own defaults (``ContextualPolicy`` reads them): greedy on the
# posterior mean converts ~2x the uplift of Thompson sampling over 30 reps, and a capacity
# price of 0.002 at capacity_target 0.9 adds ~1.9 points of the oracle's uplift
# (benchmarks/routing.py). The other policies price nothing: round robin rotates.
CONTEXTUAL_MODE: Final = "greedy"
CONTEXTUAL_CAPACITY_PRICE: Final = 0.002

# No exploration floor, no fairness floor, no capacity price: the library's defaults before
# the daemon's became the defaults. ``allocation.registry.bare_policy`` adds Thompson
# sampling for the contextual policy.
BARE_OPTIONS: Mapping[str, float] = MappingProxyType({"exploration_floor": 0.0, "fairness_floor": 0.0, "capacity_price": 0.0})


@dataclass(frozen=True)
class PolicyOptions:
    """Options every policy accepts (validated here so a typo fails at construction).

    exploration_floor: each eligible rep is chosen with probability at least
        ``exploration_floor / K`` (K = eligible reps); keeps logged propensities positive so
        off-policy evaluation stays possible.
    fairness_floor: each eligible rep should receive at least ``fairness_floor × 1/K`` of the
        leads it was eligible for; enforced by a virtual queue per rep whose length is added
        to the rep's score (``fairness_scale`` per lead owed; None: the policy's default).
    posterior_exploration: for a greedy policy with a posterior (contextual, greedy mode), the
        share of choices drawn by Thompson sampling instead of the posterior mean: exploration
        spent on reps that may really be best for this lead, not spread evenly over all of
        them. Its propensities are exact like the rest; with the exploration floor on top the
        greedy share is ``1 - exploration_floor - posterior_exploration``.
    discount: per-day forgetting factor for past observations (1.0 = remember all; 0.99 gives
        a half-life of ~69 days) for drifting skills.
    capacity_price: step η of the capacity price (``allocation.adjust``), in score units per
        decision; 0 turns it off; None: the policy's default (``Policy.default_capacity_price``:
        ``CONTEXTUAL_CAPACITY_PRICE`` for the contextual policy, 0 for the others), resolved
        when the policy is built. capacity_target: the open load / max_open (ρ) above which a
        rep's price rises.
    """

    seed: int = 0
    exploration_floor: float = 0.05
    fairness_floor: float = 0.8
    fairness_scale: float | None = None
    posterior_exploration: float = 0.0
    discount: float = 1.0
    capacity_price: float | None = None
    capacity_target: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.exploration_floor < 1.0:
            raise ValueError(f"exploration_floor must be in [0, 1), got {self.exploration_floor}")
        if not 0.0 <= self.posterior_exploration < 1.0 or self.exploration_floor + self.posterior_exploration >= 1.0:
            raise ValueError(
                f"posterior_exploration must be in [0, 1) and leave a greedy share beside exploration_floor, got "
                f"{self.posterior_exploration} with exploration_floor {self.exploration_floor}"
            )
        if not 0.0 <= self.fairness_floor < 1.0:
            raise ValueError(f"fairness_floor must be in [0, 1) (a share of the equal share), got {self.fairness_floor}")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1] (per-day forgetting factor), got {self.discount}")
        if self.capacity_price is not None and self.capacity_price < 0:
            raise ValueError(f"capacity_price must be >= 0 (0 = off), got {self.capacity_price}")
        if not 0.0 < self.capacity_target <= 1.0:
            raise ValueError(f"capacity_target must be in (0, 1] (a share of max_open), got {self.capacity_target}")
        if self.fairness_scale is not None and self.fairness_scale <= 0:
            raise ValueError(f"fairness_scale must be positive, got {self.fairness_scale}")
