"""A CRM API limit at start-up is not a configuration error: the daemon waits for it within a
bound, then exits 75, which the unit does not restart on (never 2, never a restart loop).

Real clients against the sandbox over HTTPS; the sandbox's own limits refuse the calls."""

from __future__ import annotations

import configparser
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.errors import CRMError
from sandbox.context import Faults
from sandbox.server import SandboxServer
from sync.cli import app
from sync.cli.common import TEMPORARY
from sync.ops.demo import sandbox_env, sandbox_settings
from sync.ops.startup import STARTUP_MAX_WAIT_SECONDS, StartDeferred, build_patiently
from sync.wiring.connector import make_connector
from sync.wiring.deps import build_deps

pytestmark = pytest.mark.integration
UNIT = Path(__file__).resolve().parents[3] / "deploy" / "leadpilot.service"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in list(os.environ):
        if key.upper().startswith("LEADPILOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env
    yield tmp_path
    # the commands install leadpilot's log handler on the runner's stderr, closed by now
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "leadpilot"]:
        root.removeHandler(handler)


def _env(crm: str, info: dict[str, Any], state: Path) -> dict[str, str]:
    return {**sandbox_env(crm, info, state), "LEADPILOT_ROUTING__FILE": str(state / "no-routing.toml"),
            "LEADPILOT_LOG_LEVEL": "WARNING"}


@pytest.mark.parametrize(("crm", "faults", "refusal"), [
    ("hubspot", Faults(hs_daily_limit=1), "DAILY"),
    ("salesforce", Faults(sf_daily_budget=1), "REQUEST_LIMIT_EXCEEDED"),
])
@pytest.mark.parametrize("command", [["run"], ["sync", "--once"]], ids=" ".join)
def test_given_the_daily_api_limit_spent_when_leadpilot_starts_then_it_exits_75_not_2(
    workdir: Path, crm: str, faults: Faults, refusal: str, command: list[str]
) -> None:
    with SandboxServer(seed=1, faults=faults) as srv:
        connector = make_connector(sandbox_settings(crm, srv.info, workdir), crm=crm)
        connector.list_reps()  # spends the whole (one-call) budget
        result = CliRunner().invoke(app, command, env=_env(crm, srv.info, workdir / "state"))
    assert result.exit_code == TEMPORARY, result.output
    assert _error_line(result.stderr).startswith("cannot start yet: ")
    assert refusal in result.stderr and "Traceback" not in result.output
    # A daily limit resets long after the start-up bound: no waiting first.
    assert "waited 0 s at start-up" in result.stderr or command != ["run"]


def test_given_a_burst_limit_at_start_up_when_it_passes_then_the_daemon_starts_after_waiting(workdir: Path) -> None:
    waits: list[float] = []
    statuses: list[str] = []
    with SandboxServer(seed=1, faults=Faults(p_429=1.0)) as srv:
        settings = sandbox_settings("hubspot", srv.info, workdir)

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            srv.ctx.faults.p_429 = 0.0  # the burst window has passed

        deps = build_patiently(
            lambda: build_deps(settings, connector=make_connector(settings, sleep=lambda _s: None)),
            sleep=sleep, on_wait=statuses.append)
        try:
            assert deps.crm == "hubspot" and deps.router is not None
        finally:
            deps.store.close()
    assert waits == [10.0]
    assert statuses and statuses[0].startswith("CRM API limit at start-up; trying again in 10 s")


def test_given_a_limit_that_does_not_pass_then_start_up_gives_up_within_the_bound(workdir: Path) -> None:
    waits: list[float] = []
    with SandboxServer(seed=1, faults=Faults(p_429=1.0)) as srv:
        settings = sandbox_settings("hubspot", srv.info, workdir)
        with pytest.raises(StartDeferred) as info:
            build_patiently(lambda: build_deps(settings, connector=make_connector(settings, sleep=lambda _s: None)),
                            sleep=waits.append)
    assert waits == [10.0, 20.0, 40.0, 60.0, 60.0]  # the next 60 s would pass the bound
    assert sum(waits) <= STARTUP_MAX_WAIT_SECONDS < STARTUP_MAX_WAIT_SECONDS + 60 and info.value.waited == 190
    assert isinstance(info.value.error, CRMError) and info.value.error.status == 429


def test_given_a_configuration_refusal_at_start_up_then_it_is_not_waited_for(workdir: Path) -> None:
    waits: list[float] = []
    with SandboxServer(seed=1) as srv:
        settings = sandbox_settings("hubspot", srv.info, workdir, hubspot={"access_token": "pat-na1-wrong"})
        with pytest.raises(CRMError):
            build_patiently(lambda: build_deps(settings, connector=make_connector(settings, sleep=lambda _s: None)),
                            sleep=waits.append)
    assert waits == []


def test_given_a_rejected_token_when_leadpilot_starts_then_exit_2_not_75(workdir: Path) -> None:
    with SandboxServer(seed=1) as srv:
        env = {**_env("hubspot", srv.info, workdir / "state"), "LEADPILOT_HUBSPOT__ACCESS_TOKEN": "pat-na1-00-wrong"}
        result = CliRunner().invoke(app, ["sync", "--once"], env=env)
    assert result.exit_code == 2, result.output
    assert _error_line(result.stderr).startswith("cannot start: ") and "pat-na1-00-wrong" not in result.output


def test_the_unit_does_not_restart_on_the_start_up_limit_code_and_waits_long_enough() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(UNIT.read_text(encoding="utf-8"))
    service = unit["Service"]
    assert str(TEMPORARY) in service["RestartPreventExitStatus"].split()
    assert float(service["TimeoutStartSec"]) > STARTUP_MAX_WAIT_SECONDS


def _error_line(stderr: str) -> str:
    """The error a command ends with: warnings printed before it (e.g. the missing routing file
    these tests name on purpose) come first."""
    lines = [line for line in stderr.splitlines() if not line.startswith("warning: ")]
    return lines[0] if lines else ""
