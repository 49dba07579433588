"""Everything a job body needs, injected: settings, store, connector, scorer, router, clock.

The scheduled jobs (``run_cycle``, ``run_rewards``, ``run_retrain``) are plain functions
of a ``Deps``; the daemon, the CLI, the demo and the tests all build one and call them.
Nothing in a job body reads the wall clock or sleeps except through ``clock``/``sleep``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from connectors.base import Connector
from scoring.types import Score
from sync.config.settings import Settings
from sync.jobs.owners import OwnerRules
from sync.jobs.workload import Workload
from sync.ops.metrics import Metrics
from sync.store import Store, open_store
from sync.wiring.routing import RouterBox, build_router_box, integration_user_id

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Scorer(Protocol):
    """Anything that scores feature mappings (a trained ``LeadScorer``, ``ZeroShotScorer``, the prior)."""

    def score(self, rows: Sequence[Mapping[str, Any]]) -> list[Score]: ...


class ScorerProvider(Protocol):
    """Hands the cycle the scorer to use now (the registry's champion, or the cold-start scorer)."""

    def current(self) -> Scorer: ...

    @property
    def version(self) -> str: ...

    @property
    def cold_start(self) -> bool:
        """True while no trained champion exists and training could make one (the first run trains)."""
        ...

    def train(self, history: Sequence[Any], now: datetime, *, dry_run: bool = False) -> Any:
        """Train a challenger; returns an outcome with ``version``, ``promoted``, ``reason``, ``metrics``."""
        ...


@dataclass
class Deps:
    """The injected world of one daemon process (or one test).

    ``router`` is the routing config plus the persisted policy state; ``owner_rules`` says
    which current owners mean "needs an owner" (``sync.jobs.owners``).
    ``stop`` is set by SIGTERM/SIGINT: job bodies finish the batch in hand and return.
    ``heartbeat`` is called once per batch (the daemon feeds the systemd watchdog from it).
    """

    settings: Settings
    store: Store
    connector: Connector
    scorers: ScorerProvider
    router: RouterBox
    owner_rules: OwnerRules = field(default_factory=OwnerRules)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    metrics: Metrics | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    heartbeat: Callable[[], None] = lambda: None
    batch_size: int = 200
    # Leads read before any of them is written (bounded memory); the cycle re-queries after each chunk.
    chunk_size: int = 10_000
    # Backoff of a parked lead: base * 2**(attempts-1), capped; after max_attempts it stops
    # holding the watermark back and waits for its next change in the CRM (still listed by status).
    park_base_seconds: float = 300.0
    park_max_seconds: float = 6 * 3600.0
    max_attempts: int = 6
    # Each rep's open leads as the CRM last counted them (capacity), kept between cycles.
    workload: Workload = field(default_factory=Workload)
    # Held while a cycle or the fast new-leads pass works: they never decide at the same time.
    work_lock: threading.Lock = field(default_factory=threading.Lock)
    # The fast new-leads pass's run-history row of the day (``sync.jobs.new_leads.FastPassDay``).
    fast_pass: Any = None

    @property
    def crm(self) -> str:
        return self.connector.crm

    @property
    def dry_run(self) -> bool:
        return self.settings.dry_run

    @property
    def shadow(self) -> bool:
        return self.settings.shadow


def build_deps(
    settings: Settings,
    *,
    store: Store | None = None,
    connector: Connector | None = None,
    clock: Callable[[], datetime] = utcnow,
    metrics: Metrics | None = None,
    scorers: ScorerProvider | None = None,
) -> Deps:
    """Wire a ``Deps`` from settings: open the store, connect to the CRM, load the policy and the model."""
    from sync.wiring.connector import make_connector
    from sync.wiring.scorers import ModelScorers  # imports this module

    store = store if store is not None else open_store(settings)
    if not settings.dry_run:
        stale = store.close_stale_runs(clock())
        if stale:
            log.warning("closed %d run(s) left running by a process that is gone (killed or crashed) as "
                        "interrupted", len(stale))
    connector = connector if connector is not None else make_connector(settings)
    crm_reps = connector.list_reps()
    integration = integration_user_id(settings, crm_reps)
    router = build_router_box(settings, store, crm_reps, integration)
    if metrics is not None:
        metrics.set_versions(policy=settings.routing.policy, policy_version=str(router.version))
    return Deps(
        settings=settings,
        store=store,
        connector=connector,
        scorers=scorers if scorers is not None else ModelScorers(settings, store, clock=clock),
        router=router,
        owner_rules=OwnerRules.build(
            settings, crm_reps, integration,
            connector.inactive_owners() if settings.routing.reroute_inactive_owners else (), clock()),
        clock=clock,
        metrics=metrics,
    )
