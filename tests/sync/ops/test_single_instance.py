"""One `leadpilot run` per store, with real processes: a second refuses naming the first; after
`kill -9` of the first (no clean-up, no stale lock to remove), the second starts.

Once on a SQLite store (a kernel file lock) and once on PostgreSQL (a session advisory lock).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sandbox.server import SandboxServer
from sync.cli.common import HELD
from sync.ops.instance import lock_path, store_key
from sync.store.engine import create_store_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def _holder_pid(db_url: str, lock: str = "store") -> int | None:
    """The pid the holder of the store's ``lock`` wrote for itself (the lock file, or its PostgreSQL session)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = lock_path(Path(url.database or ""), lock)
        try:
            return int(json.loads(path.read_text(encoding="utf-8"))["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    engine = create_store_engine(db_url)
    try:
        with engine.connect() as conn:
            key = store_key(conn.execute(sa.text("SELECT current_schema()")).scalar_one(), lock)
            names = conn.execute(sa.text(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.objid = :key"),
                {"key": key & 0xFFFFFFFF}).scalars().all()
    finally:
        engine.dispose()
    pids = [int(part[4:]) for name in names for part in name.split() if part.startswith("pid=")]
    return pids[0] if len(pids) == 1 else None


def _wait_for_holder(db_url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _holder_pid(db_url) == proc.pid:
            return
        time.sleep(0.2)
    out = proc.stdout.read() if proc.poll() is not None and proc.stdout else ""
    pytest.fail(f"pid {proc.pid} never held the store (exit {proc.poll()}):\n{out}")


def _leadpilot(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sync.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_given_a_running_daemon_when_a_second_starts_then_it_refuses_until_the_first_is_killed(
    tmp_path: Path, db_url: str
) -> None:
    with SandboxServer(seed=4, leads=40) as srv:
        info = srv.info
        env = {**os.environ, "LEADPILOT_CRM": "hubspot", "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
               "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"],
               "LEADPILOT_STATE_DIR": str(tmp_path / "state"), "LEADPILOT_STORE_URL": db_url,
               "LEADPILOT_METRICS_PORT": "0", "LEADPILOT_ROUTING__FILE": str(tmp_path / "no-routing.toml")}
        env.pop("NOTIFY_SOCKET", None)
        first = _leadpilot(env, "run")
        second: subprocess.Popen[str] | None = None
        try:
            _wait_for_holder(db_url, first)
            for args in (("run",), ("sync", "--once")):
                refused = subprocess.run([sys.executable, "-m", "sync.cli", *args], cwd=ROOT, env=env,
                                         capture_output=True, text=True, timeout=120)
                assert refused.returncode == HELD, (args, refused.stdout, refused.stderr)
                message = refused.stderr
                assert f"pid {first.pid} on {socket.gethostname()}" in message, message
                assert "`leadpilot run`" in message and " since " in message, message
                assert "Traceback" not in message and "stop that one first" in message
            # A dry run writes nothing: it may look while the daemon works.
            dry = subprocess.run([sys.executable, "-m", "sync.cli", "sync", "--once", "--dry-run"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300)
            assert dry.returncode == 0, dry.stderr

            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            second = _leadpilot(env, "run")  # nothing cleaned up in between
            _wait_for_holder(db_url, second)
            seen = []
            for line in second.stdout or ():  # until its scheduler runs (signal handlers installed)
                seen.append(line)
                if "leadpilot daemon started" in line:
                    break
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=120) == 0, "".join(seen) + (second.stdout.read() if second.stdout else "")
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)


def test_the_held_code_is_distinct_and_the_unit_restarts_on_it_as_a_standby() -> None:
    import configparser

    from sync.cli.common import CONFIG_ERROR, TEMPORARY, UNAVAILABLE

    assert HELD not in (0, CONFIG_ERROR, UNAVAILABLE, TEMPORARY)
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((ROOT / "deploy" / "leadpilot.service").read_text(encoding="utf-8"))
    service = unit["Service"]
    # Restarted (not prevented): a unit on a second machine retries every RestartSec and takes over.
    assert str(HELD) not in service["RestartPreventExitStatus"].split()
    assert service["Restart"] == "on-failure"


def test_given_workers_on_a_postgresql_store_then_they_share_it_and_exclude_a_daemon(postgres_url: str) -> None:
    from sync.ops.instance import StoreHeld, acquire

    first = acquire(postgres_url, "worker", shared=True)
    second = acquire(postgres_url, "worker", shared=True)  # any number of workers together
    assert first is not None and second is not None
    with pytest.raises(StoreHeld, match=r"`leadpilot worker` \(pid \d+ on "):
        acquire(postgres_url, "run")
    first.release()
    second.release()
    daemon = acquire(postgres_url, "run")
    assert daemon is not None
    with pytest.raises(StoreHeld, match=r"`leadpilot run` \(pid \d+ on .*\) since "):
        acquire(postgres_url, "worker", shared=True)
    daemon.release()
    acquire(postgres_url, "worker", shared=True).release()  # type: ignore[union-attr]
