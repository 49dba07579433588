"""Each process's metrics endpoint: a worker serves its own (its jobs under their org's label),
the port comes from ``--metrics-port`` / LEADPILOT_METRICS_PORT plus ``--metrics-port-offset``,
and a port already taken stops the start with a line naming it and what to change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import typer
from typer.testing import CliRunner

from sandbox.server import SandboxServer
from sync.config.settings import Settings
from sync.ops.metrics import Metrics, MetricsPortError, start_metrics_server
from sync.store.engine import create_store_engine, org_schema
from tests.processes import stop_processes

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other process listens on (this test's socket)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_given_a_taken_port_when_the_metrics_server_starts_then_the_error_names_the_port(taken_port: int) -> None:
    with pytest.raises(MetricsPortError, match=f"cannot serve metrics on 127.0.0.1:{taken_port}: the port is taken "
                                               "by another process"):
        start_metrics_server(Metrics(), taken_port)
    assert start_metrics_server(Metrics(), 0) == 0  # 0: no endpoint, nothing bound


def _settings(port: int, org: str | None = None) -> Settings:
    settings = Settings(crm="hubspot", metrics_port=port, _env_file=None)  # type: ignore[call-arg]
    return settings.for_org(org) if org else settings


@pytest.mark.parametrize(("ports", "option", "offset", "expected", "source"), [
    ([9464], None, 2, 9466, "LEADPILOT_METRICS_PORT=9464 + --metrics-port-offset 2"),
    ([9464, 9464], 9500, 0, 9500, "--metrics-port 9500"),
    ([9464], 9500, 3, 9503, "--metrics-port 9500 + --metrics-port-offset 3"),
    ([0], None, 5, 0, ""),  # LEADPILOT_METRICS_PORT=0: no endpoint, whatever the offset
    ([9464], 0, 5, 0, ""),
])
def test_given_the_port_settings_when_a_worker_starts_then_its_port_is_the_base_plus_its_offset(
        ports: list[int], option: int | None, offset: int, expected: int, source: str) -> None:
    from sync.cli.daemon import _worker_metrics_port

    orgs = [_settings(port, org) for port, org in zip(ports, ["acme", "globex"], strict=False)]
    port, fix = _worker_metrics_port(orgs, option, offset)
    assert port == expected
    assert (f"it comes from {source}: give each worker on this machine a port of its own with --metrics-port N or "
            "--metrics-port-offset N, or --metrics-port 0 for none") == fix if expected else fix == ""


def test_given_orgs_naming_different_ports_or_a_port_beyond_65535_when_a_worker_starts_then_exit_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    from sync.cli.daemon import _worker_metrics_port

    with pytest.raises(typer.Exit) as different:
        _worker_metrics_port([_settings(9464, "acme"), _settings(9500, "globex")], None, 1)
    assert different.value.exit_code == 2
    assert "but the org files name 9464, 9500; set it once, in the environment, or give --metrics-port N" in (
        capsys.readouterr().err)
    with pytest.raises(typer.Exit) as beyond:
        _worker_metrics_port([_settings(65530)], None, 10)
    assert beyond.value.exit_code == 2
    assert "--metrics-port-offset 10: LEADPILOT_METRICS_PORT=65530 + 10 is beyond the last port" in capsys.readouterr().err


def test_given_a_taken_port_when_run_starts_then_it_names_the_port_and_the_variable_before_the_crm(
        tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env but this test's
    env = {"LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": "pat-na1-secret",
           "LEADPILOT_HUBSPOT__HOST": "https://127.0.0.1:9", "LEADPILOT_STATE_DIR": str(tmp_path / "state"),
           "LEADPILOT_METRICS_PORT": str(taken_port), "LEADPILOT_ROUTING__FILE": str(tmp_path / "none.toml"),
           "LEADPILOT_STORE_URL": "", "LEADPILOT_ORGS_DIR": ""}
    from sync.cli import app

    result = CliRunner().invoke(app, ["run"], env=env)
    assert result.exit_code == 2, result.output
    assert (f"cannot start: cannot serve metrics on 127.0.0.1:{taken_port}: the port is taken by another process; "
            "set LEADPILOT_METRICS_PORT to a free port (0: none)") in result.output
    assert "Traceback" not in result.output and "pat-na1-secret" not in result.output


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The endpoint's samples by (name, labels); empty while nothing listens."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return {}
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _acme_file(info: dict, tmp_path: Path) -> str:
    values = {"CRM": "hubspot", "HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
              "HUBSPOT__HOST": info["hubspot"]["host"], "HUBSPOT__CA_BUNDLE": info["ca_bundle"],
              "ROUTING__FILE": str(tmp_path / "no-routing.toml"), "SCORING__MIN_HISTORY": "100000",
              "SCHEDULE__SYNC_INTERVAL_MINUTES": "0.05",  # every 3 s: the first job comes at once
              "SCHEDULE__REWARDS_INTERVAL_MINUTES": "30", "SCHEDULE__NEW_LEADS_INTERVAL_MINUTES": "0"}
    return "".join(f"LEADPILOT_{k}={v}\n" for k, v in values.items())


@pytest.mark.integration
@pytest.mark.slow
def test_given_a_worker_when_it_ran_a_job_then_its_metrics_port_shows_the_job_under_its_org_and_a_second_worker_on_that_port_is_refused(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("procrastinate", reason="the workers' queue: pip install 'leadpilot[workers]'")
    port = _free_port()
    base = port - 1  # the worker's offset 1 puts it on `port`, as leadpilot-worker@1 would be on 9465
    orgs_dir = tmp_path / "orgs"
    orgs_dir.mkdir()
    shared = {"LEADPILOT_ORGS_DIR": str(orgs_dir), "LEADPILOT_STORE_URL": postgres_url,
              "LEADPILOT_STATE_DIR": str(tmp_path / "state"), "LEADPILOT_METRICS_PORT": str(base)}
    for key in [k for k in os.environ if k.upper().startswith("LEADPILOT_")]:
        monkeypatch.delenv(key)
    for key, value in shared.items():
        monkeypatch.setenv(key, value)
    env = {**os.environ, **shared}
    env.pop("NOTIFY_SOCKET", None)
    engine = create_store_engine(postgres_url)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    with SandboxServer(seed=6, leads=30) as srv:
        srv.advance(1)
        (orgs_dir / "acme.env").write_text(_acme_file(srv.info, tmp_path), encoding="utf-8")
        from sync.config.orgs import org_settings
        from sync.wiring.connector import make_connector

        make_connector(org_settings("acme", orgs_dir)).ensure_fields()  # `leadpilot init-crm --org acme`
        try:
            log = tmp_path / "worker.log"
            with log.open("wb") as out:
                procs.append((subprocess.Popen(
                    [sys.executable, "-m", "sync.cli", "worker", "--name", "w1", "--metrics-port-offset", "1"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), log))
            sync = ("leadpilot_last_success_timestamp_seconds", frozenset({("org", "acme"), ("job", "sync")}))
            deadline = time.monotonic() + 120
            samples = _scrape(port)
            while sync not in samples:
                assert procs[0][0].poll() is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, f"no sync observed on :{port}\n{log.read_text()[-3000:]}"
                time.sleep(0.3)
                samples = _scrape(port)

            second = subprocess.run([sys.executable, "-m", "sync.cli", "worker", "--name", "w2", "--metrics-port",
                                     str(port)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert second.returncode == 2, second.stderr
            assert (f"cannot start: cannot serve metrics on 127.0.0.1:{port}: the port is taken by another process; "
                    f"it comes from --metrics-port {port}: give each worker on this machine a port of its own with "
                    "--metrics-port N or --metrics-port-offset N, or --metrics-port 0 for none") in second.stderr
            assert "Traceback" not in second.stderr

            assert samples[("leadpilot_cycle_duration_seconds_count",
                            frozenset({("org", "acme"), ("job", "sync")}))] >= 1
            assert ("leadpilot_job_failures_total", frozenset({("org", "acme"), ("job", "sync")})) not in samples
            pulled = ("leadpilot_leads_total", frozenset({("org", "acme"), ("crm", "hubspot"), ("event", "pulled")}))
            assert samples[pulled] > 0
            assert {dict(labels).get("org") for _name, labels in samples} - {None} == {"acme"}  # no "default"
        finally:
            stop_processes(procs)
            with engine.begin() as conn:  # the fixture drops its schema; the org's sits beside it
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{org_schema(postgres_url, "org_acme")}" CASCADE')
            engine.dispose()
