"""Sandbox fixtures: one HTTPS sandbox server per test module, and a HubSpot client for it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from hubspot import HubSpot

from sandbox.context import Faults
from sandbox.hubspot.api import state
from sandbox.server import SandboxServer


class FakeMonotonic:
    """An injected clock for HubSpot's rolling 10-second window (no real sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    """A running sandbox (seed 0, 200 preloaded leads, skilled scenario) shared by a module.

    HubSpot's burst limit is off here (a module makes well over 100 calls); tests that
    exercise it turn it on with an injected clock. Tests that change faults use
    ``faults`` below, which restores them.
    """
    with SandboxServer(seed=0, leads=200, scenario="skilled", faults=Faults(hs_burst_limit=0)) as server:
        yield server


@pytest.fixture
def faults(sandbox_server: SandboxServer) -> Iterator[Faults]:
    """The running sandbox's fault settings; restored after the test."""
    saved = dataclasses.asdict(sandbox_server.ctx.faults)
    yield sandbox_server.ctx.faults
    for k, v in saved.items():
        setattr(sandbox_server.ctx.faults, k, v)


@pytest.fixture
def fake_monotonic(sandbox_server: SandboxServer) -> Iterator[FakeMonotonic]:
    """HubSpot's burst window on an injected clock, with an empty window; restored after."""
    st = state(sandbox_server.ctx)
    saved = st.monotonic
    clock = FakeMonotonic()
    st.monotonic = clock
    st.burst.clear()
    yield clock
    st.monotonic = saved
    st.burst.clear()


@pytest.fixture
def hs(sandbox_server: SandboxServer) -> HubSpot:
    """The real hubspot-api-client, pointed at the sandbox and trusting its CA."""
    info = sandbox_server.info
    return HubSpot(access_token=info["hubspot"]["access_token"], host=info["hubspot"]["host"], ssl_ca_cert=info["ca_cert"])
