"""Fixtures for connector tests: a fake clock/sleep and connectors wired to a live sandbox."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.retry import RetryPolicy


@dataclass
class FakeClock:
    """Injected time: ``sleep`` records and advances ``monotonic`` and ``now``; nothing really waits."""

    t: float = 0.0
    start: datetime = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(clock: FakeClock) -> Callable[..., Any]:
    """``make(server, "hubspot"|"salesforce", **settings_overrides)`` → a connector with fake time."""
    from sync.ops.demo import sandbox_settings
    from sync.wiring.connector import make_connector

    def build(server: Any, crm: str, policy: RetryPolicy | None = None, **overrides: Any) -> Any:
        settings = sandbox_settings(crm, server.info, **overrides)
        kw: dict[str, Any] = {"sleep": clock.sleep, "now": clock.now, "rng": random.Random(7),
                              "policy": policy or RetryPolicy(max_attempts=8, max_total_delay=600)}
        if crm == "hubspot":
            kw["monotonic"] = clock.monotonic
        return make_connector(settings, crm=crm, **kw)

    return build


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Any]]:
    """Start sandboxes (stopped at teardown); the HubSpot burst window runs on real time
    unless a test injects the fake clock into the dialect state."""
    from sandbox.server import SandboxServer

    started: list[Any] = []

    def start(**kw: Any) -> Any:
        server = SandboxServer(**kw).start()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def small_search_cap(monkeypatch: pytest.MonkeyPatch) -> int:
    """HubSpot's 10,000-result search cap at 1,000, in the connector and in the sandbox alike: the
    re-windowing path runs the same on a world a tenth the size. Returns the cap."""
    cap = 1_000
    for target in ("connectors.window.SEARCH_CAP", "connectors.hubspot.client.SEARCH_CAP",
                   "sandbox.hubspot.search.RESULT_CAP"):
        monkeypatch.setattr(target, cap)
    return cap
