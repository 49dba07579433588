"""`leadpilot run` as a real subprocess: it syncs on schedule and exits 0 soon after SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox.server import SandboxServer
from sync.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_given_a_running_daemon_when_sigterm_then_it_finishes_and_exits_zero(tmp_path: Path) -> None:
    port = _free_port()
    with SandboxServer(seed=3, leads=150) as srv:
        srv.advance(1)
        info = srv.info
        env = {**os.environ, "LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
               "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"],
               "LEADPILOT_STATE_DIR": str(tmp_path / "state"), "LEADPILOT_METRICS_PORT": str(port),
               "LEADPILOT_ROUTING__FILE": str(tmp_path / "no-routing.toml"),
               "LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES": "0.05"}
        env.pop("NOTIFY_SOCKET", None)
        proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "run"], cwd=Path(__file__).resolve().parents[3],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            db = tmp_path / "state" / "leadpilot.db"
            deadline = time.monotonic() + 120
            runs = []
            while time.monotonic() < deadline and proc.poll() is None:
                if db.exists():
                    runs = [r for r in Store.open(f"sqlite:///{db}", crm="hubspot").recent_runs(kind="sync")
                            if r.finished_at is not None]
                    if runs:
                        break
                time.sleep(0.5)
            assert runs, f"no sync run finished; output:\n{proc.stdout.read() if proc.poll() is not None else ''}"
            # Prometheus scrapes the running daemon: the finished cycle is counted, no secret shows.
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                scraped = resp.read().decode()
            scored = [float(line.rsplit(" ", 1)[1]) for line in scraped.splitlines()
                      if line.startswith('leadpilot_leads_total{crm="hubspot",event="scored",org="default"}')]
            assert scored and scored[0] > 0, scraped
            assert 'leadpilot_last_success_timestamp_seconds{job="sync",org="default"}' in scraped
            assert 'leadpilot_api_calls_total{crm="hubspot",kind="read",org="default"}' in scraped
            assert info["hubspot"]["access_token"] not in scraped
            proc.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            code = proc.wait(timeout=60)
            out = proc.stdout.read() if proc.stdout else ""
            assert code == 0, out
            assert time.monotonic() - t0 < 60
            assert "stopped cleanly" in out
            assert runs[0].status == "ok" and runs[0].counts["scored"] > 0
        finally:
            if proc.poll() is None:
                proc.kill()
