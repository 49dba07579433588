"""The settings of issue 17's cycle parts: the cycle deadline below the daemon's watchdog, and
re-routing the leads of owners who left (on by default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.records import Rep
from sync.config.problems import describe_settings_error
from sync.config.settings import Settings
from sync.jobs.owners import OwnerRules
from sync.ops.daemon import STUCK_AFTER_SECONDS


def test_given_no_configuration_then_the_cycle_deadline_is_below_the_watchdog(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")  # the one setting without a default
    settings = Settings()
    assert 0 < settings.schedule.cycle_deadline_seconds < STUCK_AFTER_SECONDS
    assert settings.routing.reroute_inactive_owners is True


def test_given_a_deadline_at_the_watchdog_then_the_variable_is_named(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    monkeypatch.setenv("LEADPILOT_SCHEDULE__CYCLE_DEADLINE_SECONDS", str(STUCK_AFTER_SECONDS))
    with pytest.raises(ValueError) as info:
        Settings()
    text = " ".join(describe_settings_error(info.value))
    assert "CYCLE_DEADLINE_SECONDS" in text and str(STUCK_AFTER_SECONDS) in text


def test_given_inactive_owners_then_their_leads_need_an_owner_unless_turned_off(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADPILOT_CRM", "sandbox")
    reps = [Rep("u1", "Ann", None), Rep("u2", "Bob", None, active=False), Rep("q1", "Queue", None, is_queue=True)]
    rules = OwnerRules.build(Settings(), reps, None, inactive={"u9"})
    assert rules.inactive == {"u2", "u9"}
    assert rules.needs_owner("u2") and rules.owner_gone("u9") and not rules.needs_owner("u1")
    monkeypatch.setenv("LEADPILOT_ROUTING__REROUTE_INACTIVE_OWNERS", "false")
    off = OwnerRules.build(Settings(), reps, None, inactive={"u9"})
    assert off.inactive == frozenset() and not off.needs_owner("u2") and not off.owner_gone("u9")
