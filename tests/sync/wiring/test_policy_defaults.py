"""The routing defaults are declared once, in ``allocation``: a library user's
``make_policy(name)`` is the policy the daemon builds when the admin sets nothing."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from allocation import make_policy
from connectors.records import Rep
from sync.config.settings import RoutingSettings, Settings
from sync.store import Store
from sync.wiring.routing import build_router_box

REPS = [Rep(id=f"u{i}", name=f"Rep {i}", email=None) for i in range(3)]
DAEMON_POLICIES = typing.get_args(RoutingSettings.model_fields["policy"].annotation)


def test_the_daemon_accepts_the_four_policies() -> None:
    assert set(DAEMON_POLICIES) == {"round_robin", "ucb1", "thompson", "contextual"}


@pytest.mark.parametrize("name", DAEMON_POLICIES)
def test_given_default_settings_when_the_daemon_builds_a_policy_then_it_is_make_policy_with_no_options(
    name: str, sqlite_url: str, tmp_path: Path
) -> None:
    settings = Settings(crm="sandbox", state_dir=tmp_path, routing=RoutingSettings(file=tmp_path / "none.toml", policy=name))
    store = Store.open(sqlite_url, crm="hubspot")
    try:
        daemon = build_router_box(settings, store, REPS, None).router.policy
    finally:
        store.close()
    library = make_policy(name)
    assert type(daemon) is type(library)
    assert daemon.options == library.options
    assert daemon.params() == library.params()
    # the measured defaults, resolved per policy (an unset price is the policy's own)
    assert (library.options.exploration_floor, library.options.fairness_floor, library.options.capacity_target) == (0.05, 0.8, 0.9)
    assert library.options.capacity_price == (0.002 if name == "contextual" else 0.0)
    if name == "contextual":
        assert library.params()["mode"] == "greedy"
