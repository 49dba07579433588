"""leadpilot allocation: lead + eligible reps -> chosen rep (+ propensity), learning from rewards.

Pure and seeded: no CRM, no database, no I/O. The daemon drives it through ``Router``::

    from allocation import Router, RepConfig, make_policy
    router = Router(policy=make_policy("contextual", seed=0, fairness_floor=0.8),
                    reps=[RepConfig(id="r1", max_open=50), RepConfig(id="r2", max_open=50)])
    decision = router.assign("L-1", {"country": "DE", "industry": "retail"}, now)
    router.record_outcome("L-1", won=True, now=later)
    router.tick(later)
    state = router.to_state(); router = Router.from_state(state)
"""

from allocation.base import Observations, Policy, PolicyOptions
from allocation.constraints import RepConfig, TerritoryRule
from allocation.decision import Choice, OpenAssignment
from allocation.ope import LoggedDecision, OPERefused, OPEReport, evaluate, greedy_target
from allocation.registry import POLICIES, make_policy
from allocation.rewards import DelayModel, WinRateEstimate
from allocation.router import Router

__all__ = [
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
    "TerritoryRule",
    "WinRateEstimate",
    "evaluate",
    "greedy_target",
    "make_policy",
]
