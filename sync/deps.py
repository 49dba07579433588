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
from connectors.records import Rep
from scoring.types import Score
from sync.metrics import Metrics
from sync.settings import Settings

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


@dataclass
class OwnerRules:
    """Which current owners mean "this lead needs an owner" (empty always does).

    ``reassign_from``: queues and the integration user, from settings plus what the CRM
    reports as queues. A human owner is never replaced unless ``reassign_human_owned``.
    """

    reassign_from: frozenset[str] = frozenset()
    reassign_human_owned: bool = False

    def needs_owner(self, owner_id: str | None) -> bool:
        if not owner_id:
            return True
        return owner_id in self.reassign_from or self.reassign_human_owned

    @classmethod
    def build(cls, settings: Settings, reps: Sequence[Rep], integration_user: str | None) -> OwnerRules:
        ids = set(settings.routing.reassign_from)
        ids.update(r.id for r in reps if r.is_queue)
        if integration_user:
            ids.add(integration_user)
        return cls(frozenset(ids), settings.routing.reassign_human_owned)


@dataclass
class Deps:
    """The injected world of one daemon process (or one test).

    ``router`` is a ``sync.policy.RouterBox`` (routing config + persisted policy state);
    ``stop`` is set by SIGTERM/SIGINT: job bodies finish the batch in hand and return.
    ``heartbeat`` is called once per batch (the daemon feeds the systemd watchdog from it).
    """

    settings: Settings
    store: Any  # sync.store.Store
    connector: Connector
    scorers: ScorerProvider
    router: Any  # sync.policy.RouterBox
    owner_rules: OwnerRules = field(default_factory=OwnerRules)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    metrics: Metrics | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    heartbeat: Callable[[], None] = lambda: None
    batch_size: int = 200
    # Backoff of a parked lead: base * 2**(attempts-1), capped; after max_attempts it stops
    # holding the watermark back and waits for its next change in the CRM (still listed by status).
    park_base_seconds: float = 300.0
    park_max_seconds: float = 6 * 3600.0
    max_attempts: int = 6

    @property
    def crm(self) -> str:
        return self.connector.crm

    @property
    def dry_run(self) -> bool:
        return self.settings.dry_run

    @property
    def shadow(self) -> bool:
        return self.settings.shadow
