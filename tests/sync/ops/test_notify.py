"""Given a NOTIFY_SOCKET (a real datagram socket), the notifier speaks the sd_notify protocol."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sync.ops.notify import SystemdNotifier


def test_given_no_socket_when_notifying_then_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = SystemdNotifier()
    assert not n.enabled
    assert n.ready() is False


def test_given_socket_when_lifecycle_then_messages_arrive_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    n = SystemdNotifier()
    assert n.ready("syncing every 5 min") and n.watchdog() and n.stopping()
    got = [server.recv(4096).decode() for _ in range(3)]
    server.close()
    n.close()
    assert got == ["READY=1\nSTATUS=syncing every 5 min", "WATCHDOG=1", "STOPPING=1"]


def test_given_watchdog_usec_when_asked_then_half_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert SystemdNotifier.watchdog_interval() == 60.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert SystemdNotifier.watchdog_interval() is None
