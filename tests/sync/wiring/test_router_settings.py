"""Routing settings changed after the policy state was saved take effect on the next load;
what the policy learned (its posterior, open assignments, queues) is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.records import Rep
from sync.config.settings import RoutingSettings, Settings
from sync.store import Store
from sync.wiring.routing import build_router_box

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REPS = [Rep(id=f"u{i}", name=f"Rep {i}", email=None) for i in range(4)]


def _settings(tmp_path: Path, **routing: object) -> Settings:
    return Settings(crm="sandbox", state_dir=tmp_path, routing=RoutingSettings(file=tmp_path / "none.toml", **routing))


def test_given_saved_state_when_settings_change_then_configured_options_win_and_learning_is_kept(sqlite_url: str, tmp_path: Path) -> None:
    store = Store.open(sqlite_url, crm="hubspot")
    box = build_router_box(_settings(tmp_path, fairness_floor=0.8, exploration_floor=0.05), store, REPS, None)
    with store.atomic():
        for i in range(12):
            box.assign(f"L{i}", {"industry": "retail"}, T0 + timedelta(hours=i))
        box.record_outcome("L0", True, T0 + timedelta(days=1))
        box.tick(T0 + timedelta(days=1))
        box.save(T0 + timedelta(days=1))
    learned = box.router.to_state()
    assert box.router.policy.options.capacity_price == 0.002  # unset: the contextual policy's measured default
    rotation = build_router_box(_settings(tmp_path, policy="round_robin"), store, REPS, None)
    assert rotation.router.policy.options.capacity_price == 0.0  # round robin keeps rotating

    changed = build_router_box(_settings(tmp_path, fairness_floor=0.5, exploration_floor=0.1, contextual_mode="thompson",
                                         capacity_price=0.0), store, REPS, None)
    options = changed.router.policy.options
    assert (options.fairness_floor, options.exploration_floor, options.capacity_price) == (0.5, 0.1, 0.0)
    assert changed.router.policy.mode == "thompson"  # type: ignore[attr-defined]
    assert changed.version == box.version
    assert changed.router.to_state()["ledger"] == learned["ledger"]  # open assignments and outcomes kept
    assert changed.router.queues == box.router.queues
    d = changed.assign("L99", {"industry": "retail"}, T0 + timedelta(days=2))
    assert min(d.probabilities.values()) >= 0.1 / 4 - 1e-12  # the new exploration floor applies

    same = build_router_box(_settings(tmp_path, fairness_floor=0.8, exploration_floor=0.05), store, REPS, None)
    assert same.router.policy.options == box.router.policy.options
    store.close()
