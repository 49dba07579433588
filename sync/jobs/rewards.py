"""The rewards job: closed outcomes → the assignments they belong to → the routing policy, once each.

``run_rewards(deps)`` pulls outcomes closed since the ``outcomes`` watermark, matches each to
the recorded assignment of its lead and, in ONE transaction, marks the reward applied
(``store.apply_outcome``: a conditional update that succeeds only the first time), feeds
it to ``Router.record_outcome`` and saves the policy state. A crash anywhere applies both
or neither, so a reward reaches the policy exactly once. Once a day it also calls
``Router.tick`` (refit, soft labels for open assignments) and saves the state.

Lead-level outcomes (disqualified: a loss; converted: the early proxy reward) cost no API
call of their own: the sync cycle sees them on its pull and hands them to
``apply_lead_stages``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy.exc import DBAPIError

from connectors.errors import StopCycle
from connectors.records import STAGES, Lead, Outcome
from sync.jobs.report import JobReport, error_text, job_run
from sync.store.records import Assignment
from sync.wiring.deps import Deps
from sync.wiring.routing import RouterBox

log = logging.getLogger(__name__)

STREAM = "outcomes"
TICK_STREAM = "policy_tick"
TICK_EVERY = timedelta(days=1)


@dataclass
class RewardsReport(JobReport):
    """What one rewards run did."""

    COUNTS: ClassVar[tuple[str, ...]] = ("outcomes", "applied", "already_applied", "unmatched", "won")

    outcomes: int = 0  # outcomes pulled
    applied: int = 0  # rewards applied to the policy now
    already_applied: int = 0  # seen before (the overlap window, a re-run): not applied again
    unmatched: int = 0  # no written, non-shadow assignment of ours for that lead
    won: int = 0
    ticked: bool = False


def run_rewards(deps: Deps) -> RewardsReport:
    """Apply every newly closed outcome to the policy exactly once; tick the policy daily."""
    report = RewardsReport(started_at=deps.clock())
    with job_run(deps, report, "rewards"):
        _run(deps, report)
    log.info("rewards: %s api=%s", report.counts(), report.api_calls)
    return report


def _run(deps: Deps, report: RewardsReport) -> None:
    started = report.started_at
    since = deps.store.get_watermark(STREAM)
    newest: datetime | None = None
    hold: datetime | None = None  # an outcome whose assignment's write is not confirmed yet
    try:
        batch: list[Outcome] = []
        for outcome in deps.connector.iter_outcomes(since):
            report.outcomes += 1
            batch.append(outcome)
            if len(batch) >= deps.batch_size:
                newest, hold = _merge(newest, hold, _apply(deps, batch, report))
                batch = []
                if deps.stop.is_set():
                    report.stopped = "stop requested"
                    break
        if batch and report.stopped is None:
            newest, hold = _merge(newest, hold, _apply(deps, batch, report))
        if report.stopped is None and not deps.dry_run:
            report.ticked = _maybe_tick(deps, started)
    except StopCycle as exc:
        report.stopped = str(exc)
    except Exception as exc:  # noqa: BLE001 - the next run retries from the same watermark
        report.error = error_text(exc)
        # a database error's traceback would print its statement with every parameter
        log.error("rewards run failed: %s", report.error, exc_info=not isinstance(exc, DBAPIError))
    if newest is not None and not deps.dry_run:
        # Applying is idempotent, so the watermark may move over everything seen — except an
        # outcome whose lead's write-back a crash left unconfirmed: the next sync confirms it.
        new = min(newest, started) if hold is None else min(hold, started)
        if since is None or new > since:
            deps.store.set_watermark(STREAM, new, deps.clock())


def _apply(deps: Deps, outcomes: list[Outcome], report: RewardsReport) -> tuple[datetime | None, datetime | None]:
    """Apply one batch in one transaction; returns (latest close time seen, earliest to see again)."""
    now = deps.clock()
    known = {a.lead_id: a for a in deps.store.assignments([o.lead_id for o in outcomes], effective=True)}
    newest: datetime | None = None
    hold: datetime | None = None
    todo: list[Outcome] = []
    for o in outcomes:
        newest = _max(newest, o.closed_at)
        a = known.get(o.lead_id)
        if a is not None and a.written_at is None and not a.shadow and a.rep_id is not None:
            hold = o.closed_at if hold is None else min(hold, o.closed_at)
            report.unmatched += 1
        elif a is None or a.shadow or a.written_at is None or a.rep_id is None:
            report.unmatched += 1  # not routed by us (or only in shadow): nothing for the policy to learn
        elif a.reward_applied_at is not None:
            report.already_applied += 1
        else:
            todo.append(o)
    if deps.dry_run or not todo:
        report.applied += len(todo) if deps.dry_run else 0
        return newest, hold
    applied: list[Outcome] = []
    todo.sort(key=lambda o: o.lead_id)  # the store's lock order

    def record(_: None) -> bool:
        applied.clear()
        for o in todo:
            if deps.store.apply_outcome(o.lead_id, o.won, o.closed_at, now=now):
                deps.router.record_outcome(o.lead_id, o.won, now)
                applied.append(o)
        return bool(applied)

    deps.router.commit(lambda: None, record, now)
    report.already_applied += len(todo) - len(applied)
    report.applied += len(applied)
    report.won += sum(1 for o in applied if o.won)
    if deps.metrics is not None:
        for o in applied:
            deps.metrics.rewards.labels(org=deps.metrics.org, won=str(o.won).lower()).inc()
    return newest, hold


def apply_lead_stages(deps: Deps, router: RouterBox, leads: Sequence[Lead], assigned: Mapping[str, Assignment],
                      now: datetime) -> tuple[int, int]:
    """Lead-level outcomes seen on the sync pull, fed to the policy weeks before any deal closes.

    A routed lead that was **disqualified** is a loss for its rep: the reward is applied
    exactly once (``store.apply_outcome``) and its capacity freed. One that **converted**
    (an opportunity / deal was made from it) gets the router's early proxy reward
    (``record_opportunity``, idempotent in the policy state); its final reward still comes
    from the closed opportunity through ``run_rewards``. Only written, non-shadow decisions of
    ours count. One transaction with the policy state; returns ``(losses, proxies)``.
    """
    if deps.dry_run:
        return 0, 0
    todo = []
    for lead in leads:
        a = assigned.get(lead.id)
        if (lead.stage in STAGES and a is not None and a.rep_id is not None
                and not a.shadow and a.written_at is not None and a.reward_applied_at is None):
            todo.append(lead)
    if not todo:
        return 0, 0
    todo.sort(key=lambda lead: lead.id)  # the store's lock order
    counted = [0, 0]  # losses, proxies of the attempt that committed

    def record(_: None) -> bool:
        counted[:] = [0, 0]
        for lead in todo:
            if lead.stage == "disqualified":
                if deps.store.apply_outcome(lead.id, False, lead.modified_at, now=now):
                    router.record_outcome(lead.id, False, now)
                    counted[0] += 1
            elif router.record_opportunity(lead.id, now):
                counted[1] += 1
        return counted != [0, 0]

    router.commit(lambda: None, record, now)
    losses, proxies = counted
    if deps.metrics is not None and losses:
        deps.metrics.rewards.labels(org=deps.metrics.org, won="false").inc(losses)
    return losses, proxies


def _maybe_tick(deps: Deps, now: datetime) -> bool:
    """``Router.tick`` at most once per simulated/real day, persisted with the state."""
    def due() -> bool:
        last = deps.store.get_watermark(TICK_STREAM)  # another process may have ticked meanwhile
        return last is None or now - last >= TICK_EVERY

    def tick() -> bool:  # the refit runs outside the transaction
        if not due():
            return False
        deps.router.tick(now)
        return True

    def record(ticked: bool) -> bool:
        if ticked:
            deps.store.set_watermark(TICK_STREAM, now, now)
        return ticked

    return due() and deps.router.commit(tick, record, now)


def _merge(newest: datetime | None, hold: datetime | None,
           got: tuple[datetime | None, datetime | None]) -> tuple[datetime | None, datetime | None]:
    n, h = got
    return _max(newest, n), (h if hold is None else hold if h is None else min(hold, h))


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
