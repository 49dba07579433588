"""The one retry policy: exponential backoff with full jitter, Retry-After honoured, bounded.

Retries live here and nowhere else: the HTTP layers below (requests' HTTPAdapter,
urllib3 in hubspot-api-client) are configured not to retry, so every attempt is counted
and no POST is silently skipped or repeated (crm-apis.md pitfall 8). Sleep and randomness
are injected so tests never really wait.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from connectors.errors import Action, AuthError, CRMError, Kind, Rule

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a transient fault."""

    max_attempts: int = 6  # tries in all, the first included
    base_delay: float = 0.5  # seconds; attempt n waits up to base * 2**n
    max_delay: float = 30.0  # one wait never exceeds this (unless the CRM's Retry-After says more)
    max_total_delay: float = 120.0  # give up once the waits of one call would exceed this
    max_refreshes: int = 2  # token refreshes per call

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Wait before retry number ``attempt`` (0-based): full jitter, never below Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        wait = rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


@dataclass
class Retrier:
    """Runs one CRM operation under the policy.

    ``classify`` turns any exception into a ``CRMError`` (the CRM's ``from_…``); ``refresh``
    gets a new token (``None``: this auth mode cannot, e.g. a plain access token).
    """

    policy: RetryPolicy
    classify: Callable[[BaseException, str], CRMError]
    sleep: Callable[[float], None]
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    refresh: Callable[[], None] | None = None
    slept: float = 0.0  # total seconds waited, for reports and tests
    retries: int = 0

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried per the policy; raises the classified ``CRMError`` when it gives up."""
        waited = 0.0
        refreshes = 0
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - every fault goes through the table
                err = self.classify(exc, operation)
                if err.action is Action.REFRESH:
                    if self.refresh is None:
                        raise AuthError(
                            "the access token was rejected and this auth mode cannot refresh it "
                            "(a plain token): issue a new token or configure a login flow (jwt, "
                            "client_credentials, password)",
                            crm=err.crm, operation=operation, status=err.status, code=err.code,
                            rule=Rule(Action.FAIL, Kind.CONFIG),
                        ) from exc
                    if refreshes >= self.policy.max_refreshes:
                        raise AuthError(
                            "the CRM keeps rejecting fresh tokens: check the integration user and app",
                            crm=err.crm, operation=operation, status=err.status, code=err.code,
                            rule=Rule(Action.FAIL, Kind.CONFIG),
                        ) from exc
                    refreshes += 1
                    try:
                        self.refresh()
                    except Exception as rexc:  # noqa: BLE001
                        raise self.classify(rexc, f"{operation} (token refresh)") from rexc
                    continue
                if err.action is not Action.RETRY:
                    raise err from exc
                attempt += 1
                if attempt >= self.policy.max_attempts:
                    raise err from exc
                wait = self.policy.delay(attempt - 1, self.rng, err.retry_after)
                if waited + wait > self.policy.max_total_delay:
                    raise err from exc
                log.info("%s: %s; retry %d in %.2fs", operation, err.rule.hint or err.code or err.status,
                         attempt, wait)
                waited += wait
                self.slept += wait
                self.retries += 1
                self.sleep(wait)
