"""The daemon tests' world: a sandbox in its own process (``leadpilot sandbox serve``, so that it
survives the kills) and ``leadpilot run`` daemons started, watched and killed against it.

``daemon_world(seed=, leads=, faults=, **env)`` starts the sandbox and returns a ``DaemonWorld``:
its admin routes, the daemon's environment (HubSpot dialect, a SQLite store in the test's
state folder, second-scale schedules), ``start_daemon()`` and the runs it recorded so far.

``LEADPILOT_SOAK=1`` runs the long versions (more kills, a longer calm stretch); the suite runs
short ones that take the same paths.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from sync.config.settings import Settings
from sync.ops.demo import sandbox_settings

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("LEADPILOT_SOAK", "").lower() in ("1", "true", "yes")


@dataclass
class DaemonWorld:
    """A sandbox process and the state folder of the daemons run against it."""

    info: dict[str, Any]
    state: Path
    env: dict[str, str]
    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def admin(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        """One call to the sandbox's admin routes (advance, hold, faults, ground-truth)."""
        resp = requests.request(method, f"{self.info['admin_url']}/{route}", json=body,
                                verify=self.info["ca_cert"], timeout=30)
        resp.raise_for_status()
        return resp.json()

    def settings(self) -> Settings:
        """The daemon's settings as a test process wires them (``build_deps(world.settings())``)."""
        return sandbox_settings("hubspot", self.info, self.state)

    def runs(self) -> list[tuple[str, str]]:
        """(kind, status) of every job run so far, read straight from the daemon's SQLite store."""
        db = self.state / "leadpilot.db"
        if not db.exists():
            return []
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            try:
                return [(str(k), str(s)) for k, s in conn.execute("SELECT kind, status FROM runs")]
            except sqlite3.OperationalError:  # the schema is being created right now
                return []

    def start_daemon(self, kind: str | None = None) -> subprocess.Popen[bytes]:
        """``leadpilot run``, returned once it has begun a job (of ``kind``, e.g. ``"sync"``, when
        given): start-up — imports, model load — takes seconds, more on a busy machine, so a kill
        a moment later lands inside its work."""

        def begun() -> int:
            return sum(1 for k, _ in self.runs() if kind is None or k == kind)

        started = begun()
        daemon = subprocess.Popen([sys.executable, "-m", "sync.cli", "run"], cwd=ROOT, env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.daemons.append(daemon)
        deadline = time.monotonic() + 120
        while begun() <= started and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.05)
        assert daemon.poll() is None, f"the daemon exited with {daemon.returncode} at start-up"
        return daemon

    @staticmethod
    def kill(daemon: subprocess.Popen[bytes]) -> None:
        """``kill -9``: no clean-up of any kind runs."""
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)


@pytest.fixture
def soak() -> bool:
    """True under ``LEADPILOT_SOAK=1``: run the long version of a daemon test."""
    return LONG


@pytest.fixture
def daemon_world(tmp_path: Path) -> Iterator[Callable[..., DaemonWorld]]:
    """``daemon_world(seed, leads, faults, **env)``: a started sandbox process with leadpilot's
    fields created (``leadpilot init-crm``); ``env`` adds ``LEADPILOT_…`` variables."""
    processes: list[subprocess.Popen[str]] = []
    worlds: list[DaemonWorld] = []

    def make(seed: int, leads: int, faults: str, **env: str) -> DaemonWorld:
        sandbox = subprocess.Popen([sys.executable, "-m", "sync.cli", "sandbox", "serve", "--seed", str(seed),
                                    "--leads", str(leads), "--faults", faults],
                                   cwd=ROOT, stdout=subprocess.PIPE, text=True)
        processes.append(sandbox)
        info = json.loads(sandbox.stdout.readline())  # type: ignore[union-attr]
        state = tmp_path / "state"
        daemon_env = {**os.environ, "LEADPILOT_CRM": "hubspot",
                      "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
                      "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"],
                      "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"],
                      "LEADPILOT_STATE_DIR": str(state), "LEADPILOT_METRICS_PORT": "0",
                      "LEADPILOT_ROUTING__FILE": str(tmp_path / "no-routing.toml"),
                      "LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES": "0.01",
                      "LEADPILOT_SCHEDULE__REWARDS_INTERVAL_MINUTES": "0.02", **env}
        world = DaemonWorld(info, state, daemon_env)
        worlds.append(world)
        from sync.wiring.connector import make_connector

        make_connector(world.settings()).ensure_fields()  # `leadpilot init-crm`
        return world

    yield make
    for world in worlds:
        for daemon in world.daemons:
            if daemon.poll() is None:
                world.kill(daemon)
    for sandbox in processes:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=30)
