"""Router state as versioned JSON: what the daemon persists between cycles and restarts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from allocation.constraints import AssignmentRule, RepConfig
from allocation.ledger import Ledger
from allocation.registry import policy_from_state, policy_to_state
from allocation.rewards import DelayModel

if TYPE_CHECKING:
    from allocation.router import Router

KIND = "leadpilot.allocation.router"
VERSION = 1


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    # PCG64's 128-bit integers become strings: JSON stores in other languages (and some
    # databases) would silently round a number that large.
    state = rng.bit_generator.state
    inner = {k: str(v) for k, v in state["state"].items()}
    return {"bit_generator": state["bit_generator"], "state": inner, "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}


def _rng_from(state: Mapping[str, Any]) -> np.random.Generator:
    if state["bit_generator"] != "PCG64":
        raise ValueError(f"router state uses bit generator {state['bit_generator']!r}; only PCG64 is supported")
    bitgen = np.random.PCG64()
    restored: Any = {
        "bit_generator": "PCG64",
        "state": {k: int(v) for k, v in state["state"].items()},
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }
    bitgen.state = restored
    return np.random.Generator(bitgen)


def router_to_state(router: Router) -> dict[str, Any]:
    """Everything needed to continue exactly where the router stands."""
    return {
        "kind": KIND,
        "version": VERSION,
        "policy": policy_to_state(router.policy),
        "reps": [r.to_dict() for r in router.reps.values()],
        "fallback": router.fallback,
        "rules": [r.to_dict() for r in router.rules],
        "delay_model": router.delay_model.to_state() if router.delay_model else None,
        "proxy_weight": router.proxy_weight,
        "maturity_days": router.maturity_days,
        "propensity_method": router.propensity_method,
        "mc_draws": router.mc_draws,
        "open_prior": router.open_prior,
        "ledger": router.ledger.to_state(),
        "open_offset": dict(router.open_offset),
        "day_counts": {k: list(v) for k, v in router.day_counts.items()},
        "queues": dict(router.adjust.queues),
        "prices": dict(router.adjust.prices),
        "rng": _rng_state(router.rng),
        "last_tick": router.last_tick.isoformat() if router.last_tick else None,
    }


def router_from_state(state: Mapping[str, Any]) -> Router:
    """Inverse of ``router_to_state``; a clear error for foreign or newer state."""
    from allocation.router import Router

    if state.get("kind") != KIND:
        raise ValueError(f"not a leadpilot router state (kind={state.get('kind')!r}, expected {KIND!r})")
    version = state.get("version")
    if version != VERSION:
        raise ValueError(f"router state version {version!r} is not supported by this leadpilot (it reads version {VERSION}); upgrade leadpilot or reset the routing state")
    delay = state.get("delay_model")
    router = Router(
        policy_from_state(state["policy"]),
        [RepConfig.from_dict(r) for r in state["reps"]],
        fallback=state.get("fallback"),
        rules=[AssignmentRule.from_dict(r) for r in state.get("rules") or ()],
        delay_model=DelayModel.from_state(delay) if delay else None,
        proxy_weight=float(state["proxy_weight"]),
        maturity_days=float(state["maturity_days"]),
        propensity_method=state["propensity_method"],
        mc_draws=int(state["mc_draws"]),
        open_prior=state.get("open_prior", "model"),
    )
    router.ledger = Ledger.from_state(state["ledger"])
    router._open = Counter(router.ledger.open_counts())
    router.open_offset = {str(k): int(v) for k, v in state["open_offset"].items()}
    router.day_counts = {str(k): (str(v[0]), int(v[1])) for k, v in state["day_counts"].items()}
    router.adjust.load(state["queues"], state.get("prices", {}))
    router.rng = _rng_from(state["rng"])
    router.last_tick = datetime.fromisoformat(state["last_tick"]) if state.get("last_tick") else None
    return router
