"""Batched writes with per-lead results, shared by every connector.

A write goes in batches of the CRM's maximum size. Records failing with a transient
per-record error (``UNABLE_TO_LOCK_ROW``, a 5xx for that record) are collected and sent
again together in a later round — after the other batches, so the lock has had time to
clear — instead of retrying each batch in place. Permanent errors are reported with the
CRM's message. Every input lead appears in the report exactly once. Which per-record
errors count as transient is the CRM's ``ErrorTable.worth_resending``. ``metered_write`` is
a connector's whole ``write``: the rounds, a backoff pause between them, the calls counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from connectors.errors import CRMError
from connectors.records import LeadUpdate, WriteReport, WriteResult
from connectors.retry import Retrier
from connectors.usage import UsageMeter


def unique_updates(updates: Sequence[LeadUpdate]) -> list[LeadUpdate]:
    """One update per lead (the last one given wins), first-seen order kept."""
    by_id: dict[str, LeadUpdate] = {}
    for u in updates:
        by_id.pop(u.lead_id, None)
        by_id[u.lead_id] = u
    order = list(dict.fromkeys(u.lead_id for u in updates))
    return [by_id[i] for i in order]


def chunks(items: Sequence[LeadUpdate], size: int) -> list[list[LeadUpdate]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def write_in_rounds(
    updates: Sequence[LeadUpdate],
    send: Callable[[list[LeadUpdate]], list[WriteResult]],
    batch_size: int,
    *,
    rounds: int = 3,
    pause: Callable[[int], None] = lambda _round: None,
    big_send: Callable[[list[LeadUpdate]], list[WriteResult]] | None = None,
    big_threshold: int | None = None,
) -> WriteReport:
    """Send ``updates`` in batches; re-send transient failures in up to ``rounds - 1`` later rounds.

    ``send`` returns one result per update of its batch. ``big_send`` (Bulk 2.0) takes a whole
    round when it holds more than ``big_threshold`` updates. A ``CRMError`` from a batch
    (a spent budget, say) stops the write: the leads not yet written are reported failed with
    that error and the exception is raised with the report attached as ``.report``.
    """
    pending = unique_updates(updates)
    final: dict[str, WriteResult] = {}
    order = [u.lead_id for u in pending]
    for rnd in range(rounds):
        if not pending:
            break
        if rnd:
            pause(rnd)
        retry: list[LeadUpdate] = []
        use_big = big_send is not None and big_threshold is not None and len(pending) > big_threshold
        batches = [pending] if use_big else chunks(pending, batch_size)
        for i, batch in enumerate(batches):
            try:
                results = (big_send if use_big and big_send else send)(batch)
            except CRMError as err:
                rest = [u for b in batches[i:] for u in b] + retry
                for u in rest:
                    final[u.lead_id] = WriteResult(u.lead_id, False, err.code or str(err.status or "ERROR"),
                                                   str(err), transient=err.kind == "transient")
                err.report = WriteReport([final[i] for i in order if i in final])  # type: ignore[attr-defined]
                raise
            by_id = {r.lead_id: r for r in results}
            for u in batch:
                r = by_id.get(u.lead_id) or WriteResult(u.lead_id, False, "MISSING_RESULT",
                                                        "the CRM returned no result for this record", True)
                final[u.lead_id] = r
                if not r.ok and r.transient:
                    retry.append(u)
        pending = retry
    return WriteReport([final[i] for i in order])


def metered_write(
    updates: Sequence[LeadUpdate],
    send: Callable[[list[LeadUpdate]], list[WriteResult]],
    batch_size: int,
    *,
    meter: UsageMeter,
    retrier: Retrier,
    big_send: Callable[[list[LeadUpdate]], list[WriteResult]] | None = None,
    big_threshold: int | None = None,
) -> WriteReport:
    """``write_in_rounds`` for a connector: rounds paused by the retry policy's backoff
    (``retrier``'s sleep and seeded randomness), ``api_calls`` = the calls ``meter`` counted."""
    before = sum(meter.snapshot().values())
    report = write_in_rounds(
        updates, send, batch_size,
        pause=lambda rnd: retrier.sleep(retrier.policy.delay(rnd, retrier.rng)),
        big_send=big_send, big_threshold=big_threshold,
    )
    report.api_calls = sum(meter.snapshot().values()) - before
    return report
