"""Start-up against a CRM whose API limit is spent: wait within a bound, then give up distinctly.

Building the daemon's ``Deps`` calls the CRM (log-in, the user list). When that call meets an
API limit — a HubSpot 429 (burst or daily), Salesforce ``REQUEST_LIMIT_EXCEEDED`` — the
configuration is fine and restarting at once would only spend more of the budget. So
``build_patiently`` waits (the limit's own resume time, else a doubling backoff never below Retry-After)
and tries again while the total wait stays within ``max_wait``; past that it raises
``StartDeferred``, which the CLI turns into exit code 75 (the unit's
``RestartPreventExitStatus=``), never the configuration-error code 2. The default bound
stays below the unit's ``TimeoutStartSec=300``, so systemd does not kill a patient start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from connectors.errors import CRMError, StopCycle

log = logging.getLogger(__name__)
T = TypeVar("T")

STARTUP_MAX_WAIT_SECONDS = 240.0
_FIRST_DELAY = 10.0
_MAX_DELAY = 60.0


class StartDeferred(Exception):
    """The CRM's API limit did not recover within the start-up wait; ``error`` is the last refusal."""

    def __init__(self, error: CRMError, waited: float) -> None:
        self.error, self.waited = error, waited
        when = f"; it resets around {error.resume_at.isoformat()}" if error.resume_at is not None else ""
        super().__init__(
            f"the CRM's API limit is spent ({error}); waited {waited:.0f} s at start-up{when}. "
            "Start leadpilot again once the limit has reset (the service is not restarted automatically "
            "for this, so that restarts do not spend the budget further)."
        )


def is_rate_limit(exc: CRMError) -> bool:
    """An API limit (burst or daily, HubSpot or Salesforce), as opposed to a fault or a refusal."""
    return isinstance(exc, StopCycle) or exc.status == 429 or exc.code == "REQUEST_LIMIT_EXCEEDED"


def build_patiently(
    build: Callable[[], T],
    *,
    max_wait: float = STARTUP_MAX_WAIT_SECONDS,
    sleep: Callable[[float], None],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_wait: Callable[[str], object] = lambda _text: None,
) -> T:
    """``build()``, retried after an API limit while the waits add up to at most ``max_wait`` s.

    Any other error propagates unchanged. ``on_wait`` receives a one-line status before each
    wait (the daemon sends it to systemd as ``STATUS=``).
    """
    waited, attempt = 0.0, 0
    while True:
        try:
            return build()
        except CRMError as exc:
            if not is_rate_limit(exc):
                raise
            delay = _delay(exc, attempt, now())
            if waited + delay > max_wait:
                raise StartDeferred(exc, waited) from exc
            text = f"CRM API limit at start-up; trying again in {delay:.0f} s ({exc})"
            log.warning("%s", text)
            on_wait(text)
            sleep(delay)
            waited += delay
            attempt += 1


def _delay(exc: CRMError, attempt: int, now: datetime) -> float:
    if exc.resume_at is not None:
        return max((exc.resume_at - now).total_seconds(), 0.0)
    backoff = min(_FIRST_DELAY * 2**attempt, _MAX_DELAY)
    # Retry-After (or a window's length) is the least to wait; a limit that keeps refusing backs off.
    return max(exc.retry_after or 0.0, backoff)
