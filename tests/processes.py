"""Helpers for tests that drive real ``leadpilot`` processes (workers, backfills): one way to stop them."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path


def stop_processes(procs: Iterable[tuple[subprocess.Popen[bytes], Path]], grace: float = 60.0) -> None:
    """SIGTERM every process still running, then wait ``grace`` seconds for each; kill what is left."""
    procs = list(procs)
    for proc, _log in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc, _log in procs:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
