"""What every job run reports, and the one place a run is opened and closed.

``JobReport`` is the skeleton the sync cycle, the rewards job and the retrain job share:
when it ran, the API calls it cost, why it ended early or failed, ``ok`` and ``counts()``
(the names in ``COUNTS``, as ints, in that order: the run history, ``status`` and the CLI's
``--json`` print them). Each job's report adds its own fields.

``job_run(deps, report, kind)`` wraps a job body: on entry it notes the connector's API
usage and opens a run in the run history (not in a dry run); when the body returns it fills
``api_calls``, ``finished_at`` and ``seconds``, closes the run (``failed``, ``stopped`` or
``ok``) and feeds the job metrics. A job body catches its own faults into ``report.error`` /
``report.stopped``; an exception that escapes it leaves the run open, as a crash would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

import sqlalchemy as sa

from sync.wiring.deps import Deps

MAX_ERROR_CHARS = 500  # a run's error as stored and printed: what failed, readable on one screen
# Five or more comma-separated ids / values / placeholders in a row: "(412 items)" instead.
_ITEM = r"(?:'[^']{1,80}'|%\([^)]{1,80}\)s|[\w:.-]{1,80})"
_LIST = re.compile(rf"{_ITEM}(?:\s*,\s*{_ITEM}){{4,}}")


def error_text(exc: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """A failure as an admin reads it: the exception's kind and message, lists of ids as their
    count, at most ``limit`` characters. A database error gives its driver's first line, not the
    statement with its hundreds of parameters."""
    if isinstance(exc, sa.exc.StatementError) and exc.orig is not None:
        first = (str(exc.orig).strip().splitlines() or [""])[0]
        text = f"{type(exc.orig).__name__}: {first} (state store)"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return cap_error(text, limit)


def cap_error(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` with long lists collapsed to their count and cut to ``limit`` characters."""
    text = _LIST.sub(lambda m: f"({m.group(0).count(',') + 1} items)", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class JobReport:
    """What one job run did; subclasses name their counters in ``COUNTS``."""

    COUNTS: ClassVar[tuple[str, ...]] = ()

    started_at: datetime
    finished_at: datetime | None = None
    api_calls: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None  # why the run ended early (signal, API budget), None if it ran through
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def counts(self) -> dict[str, int]:
        return {n: int(getattr(self, n)) for n in self.COUNTS}

    @property
    def note(self) -> str | None:
        """What the run history keeps for a run that did not fail (the error, when it did)."""
        return self.stopped


def api_calls_since(deps: Deps, before: Mapping[str, int]) -> dict[str, int]:
    """API calls the connector made since ``before`` (a copy of an earlier ``api_usage()``), by kind."""
    after = deps.connector.api_usage()
    return {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in after}


def close_run(deps: Deps, run_id: int | None, report: JobReport) -> None:
    """Record a job's end in the run history: ``failed``, ``stopped`` (ended early) or ``ok``."""
    if run_id is None:
        return
    assert report.finished_at is not None
    status = "failed" if report.error else "stopped" if report.stopped else "ok"
    note = report.error or report.note
    deps.store.finish_run(run_id, report.finished_at, status, report.counts(), report.api_calls,
                          None if note is None else cap_error(note))


@contextmanager
def job_run(deps: Deps, report: JobReport, kind: str, *, job: str | None = None) -> Iterator[None]:
    """Open a run of ``kind`` in the run history around a job body and close it with ``report``.

    ``job`` names the job in the metrics (default: ``kind``).
    """
    t0 = time.monotonic()
    api_before = dict(deps.connector.api_usage())
    run_id = None if deps.dry_run else deps.store.start_run(kind, report.started_at)
    yield
    report.api_calls = api_calls_since(deps, api_before)
    finished = report.finished_at = deps.clock()
    report.seconds = time.monotonic() - t0
    close_run(deps, run_id, report)
    if deps.metrics is not None:
        deps.metrics.observe_api(deps.crm, report.api_calls)
        deps.metrics.observe_job(job or kind, report.seconds, report.ok, finished.timestamp())
