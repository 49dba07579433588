"""A routing file the admin named but that does not exist is never silent.

Without the file the sync routes to every active CRM user, ignoring the territories, capacity and
hours the admin wrote. ``check`` fails on it (exit 2); ``sync``/``run``/``worker`` warn at start,
on stderr (the journal under systemd). The default ``routing.toml`` may be absent on purpose.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.cli.config import named_routing_file_missing
from sync.config.loading import load_checked

ENV = {"LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": "pat-na1-not-used",
       "LEADPILOT_HUBSPOT__HOST": "https://127.0.0.1:9", "LEADPILOT_METRICS_PORT": "0"}


@pytest.fixture
def clean_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.upper().startswith("LEADPILOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_given_a_named_routing_file_missing_when_sync_starts_then_it_warns_naming_it(clean_dir: Path) -> None:
    env = {**ENV, "LEADPILOT_ROUTING__FILE": "/etc/leadpilot/routing.toml",
           "LEADPILOT_HUBSPOT__CONNECT_TIMEOUT_SECONDS": "1"}
    result = CliRunner().invoke(app, ["sync", "--once", "--dry-run"], env=env)
    assert result.stderr.startswith(
        "warning: LEADPILOT_ROUTING__FILE: '/etc/leadpilot/routing.toml' does not exist; e.g. cp "
        "deploy/routing.example.toml /etc/leadpilot/routing.toml (or unset LEADPILOT_ROUTING__FILE to route to "
        "every active CRM user); until then leads go to every active CRM user without the routing file's limits")
    checked = CliRunner().invoke(app, ["check", "--offline"], env=env)
    assert checked.exit_code == 2 and "LEADPILOT_ROUTING__FILE: '/etc/leadpilot/routing.toml' does not exist" \
        in checked.stderr


def test_given_the_default_routing_file_absent_or_a_named_one_present_then_nothing_is_missing(
        clean_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert named_routing_file_missing(load_checked().settings) is None  # routing.toml: optional
    named = clean_dir / "team.toml"
    named.write_text('[[reps]]\nemail = "ana@acme.com"\n', encoding="utf-8")
    monkeypatch.setenv("LEADPILOT_ROUTING__FILE", str(named))
    assert named_routing_file_missing(load_checked().settings) is None
    named.unlink()
    assert named_routing_file_missing(load_checked().settings) == (
        f"LEADPILOT_ROUTING__FILE: '{named}' does not exist; e.g. cp deploy/routing.example.toml {named} "
        "(or unset LEADPILOT_ROUTING__FILE to route to every active CRM user)")
