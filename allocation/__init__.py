"""leadpilot allocation: lead + eligible reps -> chosen rep (+ propensity), learning from rewards.

Pure and seeded: no CRM, no database, no I/O. The daemon drives it through ``Router``::

    from allocation import Router, RepConfig, make_policy
    router = Router(policy=make_policy("contextual", seed=0),  # the daemon's defaults
                    reps=[RepConfig(id="r1", max_open=50), RepConfig(id="r2", max_open=50)])
    decision = router.assign("L-1", {"country": "DE", "industry": "retail"}, now)
    router.record_outcome("L-1", won=True, now=later)
    router.tick(later)
    state = router.to_state(); router = Router.from_state(state)

The names below are imported on first use, so ``allocation.options`` and
``allocation.constraints`` (what settings and the routing file need) load without numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from allocation.base import Observations, Policy
    from allocation.constraints import (
        AssignmentRule,
        RepConfig,
        Territory,
        TerritoryRule,
        parse_working_hours,
    )
    from allocation.decision import Choice, OpenAssignment
    from allocation.ope import LoggedDecision, OPERefused, OPEReport, evaluate, greedy_target
    from allocation.options import BARE_OPTIONS, PolicyOptions
    from allocation.registry import POLICIES, bare_policy, make_policy
    from allocation.rewards import DelayModel, WinRateEstimate
    from allocation.router import Router

_HOME = {
    "Observations": "base", "Policy": "base",
    "AssignmentRule": "constraints", "RepConfig": "constraints", "Territory": "constraints",
    "TerritoryRule": "constraints", "parse_working_hours": "constraints",
    "Choice": "decision", "OpenAssignment": "decision",
    "LoggedDecision": "ope", "OPERefused": "ope", "OPEReport": "ope", "evaluate": "ope", "greedy_target": "ope",
    "BARE_OPTIONS": "options", "PolicyOptions": "options",
    "POLICIES": "registry", "bare_policy": "registry", "make_policy": "registry",
    "DelayModel": "rewards", "WinRateEstimate": "rewards",
    "Router": "router",
}

__all__ = [
    "AssignmentRule",
    "BARE_OPTIONS",
    "POLICIES",
    "Choice",
    "DelayModel",
    "LoggedDecision",
    "OPEReport",
    "OPERefused",
    "Observations",
    "OpenAssignment",
    "Policy",
    "PolicyOptions",
    "RepConfig",
    "Router",
    "Territory",
    "TerritoryRule",
    "WinRateEstimate",
    "bare_policy",
    "evaluate",
    "greedy_target",
    "make_policy",
    "parse_working_hours",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'allocation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"allocation.{home}"), name)
    globals()[name] = value  # once: later lookups skip this function
    return value
