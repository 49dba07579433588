"""End-to-end fixtures: a real sandbox CRM, the real connector over HTTPS, a real state store.

``rig_factory(crm, ...)`` starts a ``SandboxServer`` and wires leadpilot against it the way
``leadpilot demo`` does (settings → ``make_connector`` → ``build_deps``), with the sandbox's
simulated clock injected and no real sleeping. Tests inspect the CRM side through the
sandbox's record store, translated to the ids the connector uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.context import Faults
from sandbox.hubspot.props import hs_id
from sandbox.server import SandboxServer
from sync.config.settings import RoutingSettings, Settings
from sync.ops.demo import sandbox_settings as demo_sandbox_settings
from sync.wiring.deps import Deps, build_deps
from sync.wiring.scorers import ModelScorers, PriorScorer, StaticScorers

CRMS = ("salesforce", "hubspot")


def sandbox_settings(crm: str, info: dict[str, Any], state_dir: Path, **overrides: Any) -> Settings:
    """The demo's sandbox settings (no .env), with a routing file that does not exist."""
    return demo_sandbox_settings(crm, info, state_dir,
                                 **{"routing": RoutingSettings(file=state_dir / "no-routing.toml"), **overrides})


@dataclass
class Rig:
    """One sandbox + one leadpilot wired to it."""

    srv: SandboxServer
    crm: str
    state_dir: Path
    settings: Settings
    deps: Deps
    # The session's text encoder (``text_encoder``), loaded on first use
    encoder: Callable[[], Any] = lambda: None

    def model_scorers(self, seed: int = 0) -> ModelScorers:
        """Trained-model scorers on this rig's store, with the session's text encoder: MiniLM loaded
        once, one embedding cache (the sandbox worlds repeat their texts, so each is encoded once)."""
        return ModelScorers(self.settings, self.deps.store, clock=self.deps.clock, seed=seed, encoder=self.encoder())

    def cid(self, canonical: str | None) -> str | None:
        """The id the connector uses for a sandbox record id."""
        if canonical is None:
            return None
        return canonical if self.crm == "salesforce" else hs_id(canonical)

    def leads(self) -> dict[str, dict[str, Any]]:
        """CRM leads by connector id (copies of the sandbox records)."""
        return {str(self.cid(r["Id"])): dict(r) for r in self.srv.store.all("Lead")}

    def open_lead_ids(self) -> set[str]:
        """Ids of the leads still being worked (not converted or disqualified), as the connector
        reads them: closed leads are never rewritten. One pull: a pull per lead would spend the
        CRM's burst limit."""
        return {lead.id for lead in self.deps.connector.iter_changed_leads(None) if lead.stage is None}

    def owners(self) -> dict[str, str | None]:
        return {lid: self.cid(r.get("OwnerId")) for lid, r in self.leads().items()}

    @property
    def queue(self) -> str:
        return str(self.cid(self.srv.world.queue_id))

    @property
    def reps(self) -> set[str]:
        return {str(self.cid(r)) for r in self.srv.world.reps}

    def score_of(self, record: dict[str, Any]) -> Any:
        name = "LeadPilot_Score__c" if self.crm == "salesforce" else "leadpilot_score"
        for k, v in record.items():
            if k.lower() == name.lower():
                return v
        return None

    def rebuild(self, **overrides: Any) -> Deps:
        """A fresh process's view: new settings, store, connector and policy (a restart)."""
        self.settings = sandbox_settings(self.crm, self.srv.info, self.state_dir, **overrides)
        self.deps = _deps(self.srv, self.settings, self.deps.scorers if self.deps else None)
        return self.deps


def _deps(srv: SandboxServer, settings: Settings, scorers: Any = None) -> Deps:
    from connectors.retry import RetryPolicy
    from sync.wiring.connector import make_connector

    clock = srv.store.clock.now

    def sleep(seconds: float) -> None:  # waiting moves simulated time, never real time
        srv.store.clock.advance(timedelta(seconds=seconds))

    # HubSpot's ten-second burst window runs on the same simulated time as the retry waits and
    # the pacer: a 429 waited out by `sleep` is over in the sandbox too, whatever the machine's load.
    from sandbox.hubspot.api import state

    state(srv.ctx).monotonic = lambda: clock().timestamp()
    connector = make_connector(settings, now=clock, sleep=sleep, policy=RetryPolicy())
    deps = build_deps(settings, connector=connector, clock=clock,
                      scorers=scorers or StaticScorers(PriorScorer(0.2)))
    deps.sleep = sleep
    return deps


@pytest.fixture(scope="session")
def text_encoder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The default encoder (bundled MiniLM, torch backend) with one embedding cache for the session."""
    from scoring.encoder import TextEncoder

    return TextEncoder(device="cpu", cache=tmp_path_factory.mktemp("encoder") / "encoder-cache.sqlite")


@pytest.fixture
def rig_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Rig]]:
    """``rig_factory(crm, leads=300, seed=1, faults=None, arrivals_per_day=12, generated_leads=0, **settings)``
    → a started ``Rig`` (``generated_leads``: old leads made on demand, ``sandbox.generated``)."""
    servers: list[SandboxServer] = []

    def make(crm: str, leads: int = 300, seed: int = 1, faults: Faults | None = None,
             arrivals_per_day: float = 12.0, generated_leads: int = 0, **overrides: Any) -> Rig:
        srv = SandboxServer(seed=seed, leads=leads, scenario="skilled", faults=faults,
                            generated_leads=generated_leads).start()
        srv.world.arrivals_per_day = arrivals_per_day  # a small world keeps the suite fast
        servers.append(srv)
        state = tmp_path / f"state-{len(servers)}"
        settings = sandbox_settings(crm, srv.info, state, **overrides)
        deps = _deps(srv, settings)
        deps.connector.ensure_fields()
        return Rig(srv, crm, state, settings, deps, lambda: request.getfixturevalue("text_encoder"))

    yield make
    for srv in servers:
        srv.stop()
