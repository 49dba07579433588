"""Sandbox fixtures: one HTTPS sandbox server per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.server import SandboxServer


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    """A running sandbox (seed 0, 200 preloaded leads, skilled scenario) shared by a module.

    Tests that change faults should restore them; tests that need their own data use
    ``sandbox_server.reset(seed=..., leads=...)`` or start their own ``SandboxServer``.
    """
    with SandboxServer(seed=0, leads=200, scenario="skilled") as server:
        yield server
