"""One embedded ``leadpilot backfill`` per store, with real processes: while one holds the store's
backfill lock, a second refuses naming it (exit HELD) instead of scoring the same chunks; after
``kill -9`` of the first, the second runs and finishes the backfill. On SQLite (a kernel file lock)
and on PostgreSQL (a session advisory lock)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.server import SandboxServer
from sync.cli.common import HELD
from sync.ops.demo import sandbox_env, sandbox_settings
from sync.wiring.connector import make_connector
from tests.sync.ops.test_single_instance import _holder_pid

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def test_given_an_embedded_backfill_running_when_a_second_starts_then_it_refuses_naming_the_first(
    tmp_path: Path, db_url: str
) -> None:
    state = tmp_path / "state"
    with SandboxServer(seed=5, leads=0, generated_leads=300) as srv:
        make_connector(sandbox_settings("salesforce", srv.info, state)).ensure_fields()  # `leadpilot init-crm`
        env: dict[str, Any] = {k: v for k, v in os.environ.items()
                               if not k.startswith("LEADPILOT_") and k != "NOTIFY_SOCKET"}
        env |= {**sandbox_env("salesforce", srv.info, state), "LEADPILOT_STORE_URL": db_url}
        args = [sys.executable, "-m", "sync.cli", "backfill", "--chunk-leads", "50", "--batch-leads", "50",
                "--backend", "static", "--json"]
        first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while _holder_pid(db_url, "backfill") != first.pid:
                assert first.poll() is None and time.monotonic() < deadline, (
                    f"the first backfill never held the store (exit {first.poll()})")
                time.sleep(0.02)
            first.send_signal(signal.SIGSTOP)  # frozen while it holds the lock: no race with its end

            second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert second.returncode == HELD, second.stdout + second.stderr
            assert "is being backfilled by `leadpilot backfill` " in second.stderr
            assert f"(pid {first.pid} on " in second.stderr
            assert "Traceback" not in second.stderr

            first.send_signal(signal.SIGKILL)  # the kernel or the server releases the lock: nothing to clean
            first.wait(timeout=30)
            third = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert third.returncode == 0, third.stdout + third.stderr
            progress = json.loads(third.stdout)["progress"]
            assert progress["chunks_done"] == progress["chunks_total"] > 1, progress
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(timeout=30)
