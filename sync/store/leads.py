"""Watermarks, lead states and routing decisions: the store's per-CRM tables.

Functions over an open ``Connection`` and a CRM name; ``sync.store.Store`` wraps each in a
transaction and documents the contract.

Lock order (no deadlock between concurrent processes on PostgreSQL): within a transaction,
``leads`` rows before ``assignments`` rows, each in ascending lead id, the policy state
last. Multi-row writes are sorted by lead id (``chunks`` yields sorted ids) and an UPDATE
over many rows first locks them with an ordered ``SELECT ... FOR UPDATE`` (``lock_rows``):
a plain ``UPDATE ... IN (...)`` locks rows in whatever order its plan visits them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sync.store.records import Assignment, Decision, LeadState
from sync.store.schema import LEAD_STATUSES, assignments, leads, watermarks

EFFECTIVE = assignments.c.superseded_at.is_(None)  # the decision in effect for its lead
CHUNK = 500  # ids per IN (...) clause: well under SQLite's bound-parameter limit
MAX_ERROR_CHARS = 2000


def insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT that supports ``on_conflict_do_*`` on both databases."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """Unique ids in ascending order (the lock order), ``CHUNK`` at a time."""
    unique = sorted(set(ids))
    for start in range(0, len(unique), CHUNK):
        yield unique[start : start + CHUNK]


def lock_rows(conn: sa.Connection, table: sa.Table, crm: str, ids: list[str]) -> None:
    """Lock the existing rows of ``ids`` (one sorted chunk) in lead id order; PostgreSQL only
    (a SQLite write transaction holds the whole database already)."""
    if conn.dialect.name != "postgresql" or not ids:
        return
    c = table.c
    conn.execute(sa.select(c.lead_id).where(c.crm == crm, c.lead_id.in_(ids)).order_by(c.lead_id).with_for_update())


def _check_status(status: str) -> None:
    if status not in LEAD_STATUSES:
        raise ValueError(f"lead status {status!r} is not one of {', '.join(LEAD_STATUSES)}")


def lead_from_row(row: Any) -> LeadState:
    return LeadState(**{k: v for k, v in row._mapping.items() if k != "crm"})


def assignment_from_row(row: Any) -> Assignment:
    return Assignment(**{k: v for k, v in row._mapping.items() if k != "crm"})


# ---------------------------------------------------------------- watermarks
def get_watermark(conn: sa.Connection, crm: str, stream: str) -> datetime | None:
    query = sa.select(watermarks.c.value).where(watermarks.c.crm == crm, watermarks.c.stream == stream)
    return cast(datetime | None, conn.execute(query).scalar())


def watermarks_under(conn: sa.Connection, crm: str, prefix: str) -> dict[str, tuple[datetime, datetime]]:
    query = sa.select(watermarks.c.stream, watermarks.c.value, watermarks.c.updated_at).where(
        watermarks.c.crm == crm, watermarks.c.stream.startswith(prefix, autoescape=True))
    return {row.stream: (row.value, row.updated_at) for row in conn.execute(query)}


def delete_watermarks_under(conn: sa.Connection, crm: str, prefix: str) -> int:
    stmt = sa.delete(watermarks).where(watermarks.c.crm == crm, watermarks.c.stream.startswith(prefix, autoescape=True))
    return int(conn.execute(stmt).rowcount or 0)


def set_watermark(conn: sa.Connection, crm: str, stream: str, value: datetime, now: datetime) -> None:
    stmt = insert(conn, watermarks).values(crm=crm, stream=stream, value=value, updated_at=now)
    excluded = stmt.excluded
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["crm", "stream"],
            set_={"value": excluded.value, "updated_at": excluded.updated_at},
        )
    )


# ---------------------------------------------------------------- lead states
def lead_states(conn: sa.Connection, crm: str, lead_ids: Iterable[str]) -> dict[str, LeadState]:
    out: dict[str, LeadState] = {}
    for chunk in chunks(lead_ids):
        query = sa.select(leads).where(leads.c.crm == crm, leads.c.lead_id.in_(chunk))
        out.update((row.lead_id, lead_from_row(row)) for row in conn.execute(query))
    return out


def upsert_lead_states(conn: sa.Connection, crm: str, states: Iterable[LeadState], now: datetime) -> int:
    by_id: dict[str, dict[str, Any]] = {}
    for state in states:
        _check_status(state.status)
        by_id[state.lead_id] = {**asdict(state), "crm": crm, "updated_at": state.updated_at or now}
    rows = [by_id[k] for k in sorted(by_id)]  # the lock order; one row per lead (the last given)
    if rows:
        stmt = insert(conn, leads)
        keys = [c.name for c in leads.c if c.name not in ("crm", "lead_id")]
        stmt = stmt.on_conflict_do_update(
            index_elements=["crm", "lead_id"], set_={k: stmt.excluded[k] for k in keys}
        )
        conn.execute(stmt, rows)
    return len(rows)


def set_status(conn: sa.Connection, crm: str, lead_ids: Iterable[str], status: str, now: datetime) -> None:
    _check_status(status)
    rows = [{"crm": crm, "lead_id": i, "status": status, "attempts": 0, "updated_at": now} for i in sorted(set(lead_ids))]
    if rows:
        stmt = insert(conn, leads)
        stmt = stmt.on_conflict_do_update(
            index_elements=["crm", "lead_id"], set_={"status": stmt.excluded.status, "updated_at": now}
        )
        conn.execute(stmt, rows)


def park(
    conn: sa.Connection, crm: str, lead_id: str, reason: str, now: datetime, base: timedelta, cap: timedelta
) -> datetime:
    query = sa.select(leads).where(leads.c.crm == crm, leads.c.lead_id == lead_id).with_for_update()
    row = conn.execute(query).first()
    state = lead_from_row(row) if row is not None else LeadState(lead_id=lead_id)
    attempts = state.attempts + 1
    # Bounded exponent: 2**40 minutes would overflow timedelta long before the cap applies.
    until = now + min(base * (2 ** min(attempts - 1, 30)), cap)
    parked = replace(
        state,
        status="parked",
        attempts=attempts,
        last_error=reason[:MAX_ERROR_CHARS],
        parked_until=until,
        updated_at=now,
    )
    upsert_lead_states(conn, crm, [parked], now)
    return until


def parked(conn: sa.Connection, crm: str, due_by: datetime | None) -> list[LeadState]:
    query = sa.select(leads).where(leads.c.crm == crm, leads.c.status == "parked")
    if due_by is not None:
        query = query.where(leads.c.parked_until <= due_by)
    query = query.order_by(leads.c.parked_until, leads.c.lead_id)
    return [lead_from_row(row) for row in conn.execute(query)]


def count_grades(conn: sa.Connection, crm: str) -> dict[str, int]:
    query = (sa.select(leads.c.grade, sa.func.count()).where(leads.c.crm == crm, leads.c.grade.is_not(None))
             .group_by(leads.c.grade))
    return {str(grade): int(n) for grade, n in conn.execute(query)}


def count_leads(conn: sa.Connection, crm: str) -> dict[str, int]:
    query = sa.select(leads.c.status, sa.func.count()).where(leads.c.crm == crm).group_by(leads.c.status)
    return {status: int(n) for status, n in conn.execute(query)}


# ---------------------------------------------------------------- decisions and outcomes
def record_decision(conn: sa.Connection, crm: str, decision: Decision, lead_status: str) -> bool:
    if not 0.0 < decision.propensity <= 1.0:
        raise ValueError(f"propensity must be in (0, 1], got {decision.propensity!r}")
    probs = None if decision.probabilities is None else {str(k): float(v) for k, v in decision.probabilities.items()}
    if probs is not None and (min(probs.values(), default=-1.0) < 0.0 or abs(sum(probs.values()) - 1.0) > 1e-6):
        raise ValueError(f"probabilities must be non-negative and sum to 1 over the eligible reps, got {probs!r}")
    _check_status(lead_status)
    if decision.supersedes is not None and not supersede(
            conn, crm, decision.supersedes, decision.supersede_reason or "decided again", decision.decided_at,
            lead_id=decision.lead_id):
        return False  # the decision it replaces is no longer in effect: another process moved first
    row = {
        **{k: v for k, v in asdict(decision).items() if k not in ("supersedes", "supersede_reason")},
        "crm": crm,
        "considered": dict(decision.considered),
        "context": dict(decision.context),
        "probabilities": probs,
    }
    # ON CONFLICT DO NOTHING rather than catching IntegrityError: on PostgreSQL a failed
    # statement would abort the caller's whole atomic() block. The conflict target is the
    # partial unique index: one decision in effect per lead.
    stmt = insert(conn, assignments).values(**row).on_conflict_do_nothing(
        index_elements=["crm", "lead_id"], index_where=EFFECTIVE)
    if conn.execute(stmt).rowcount != 1:
        return False
    set_status(conn, crm, [decision.lead_id], lead_status, decision.decided_at)
    return True


def supersede(conn: sa.Connection, crm: str, assignment_id: int, reason: str, now: datetime,
              lead_id: str | None = None) -> bool:
    """Take a decision out of effect (kept in the log); False when it was not in effect."""
    a = assignments.c
    query = assignments.update().where(a.crm == crm, a.id == assignment_id, a.superseded_at.is_(None))
    if lead_id is not None:
        query = query.where(a.lead_id == lead_id)
    result = conn.execute(query.values(superseded_at=now, superseded_reason=reason[:64]))
    return result.rowcount == 1


def mark_written(conn: sa.Connection, crm: str, lead_ids: Iterable[str], now: datetime) -> int:
    updated = 0
    ids = list(chunks(lead_ids))
    for chunk in ids:  # leads rows first, then assignments: the lock order
        lock_rows(conn, leads, crm, chunk)
        result = conn.execute(
            leads.update()
            .where(leads.c.crm == crm, leads.c.lead_id.in_(chunk))
            .values(status="written", attempts=0, last_error=None, parked_until=None, updated_at=now)
        )
        updated += result.rowcount
    for chunk in ids:
        a = assignments.c
        lock_rows(conn, assignments, crm, chunk)
        conn.execute(
            assignments.update()
            .where(a.crm == crm, a.lead_id.in_(chunk), a.written_at.is_(None), a.superseded_at.is_(None))
            .values(written_at=now)
        )
    return updated


def list_assignments(
    conn: sa.Connection,
    crm: str,
    lead_ids: Iterable[str] | None,
    since: datetime | None,
    unwritten: bool = False,
    limit: int | None = None,
    effective: bool = False,
) -> list[Assignment]:
    a = assignments.c
    query = sa.select(assignments).where(a.crm == crm)
    if effective or unwritten:
        query = query.where(a.superseded_at.is_(None))
    if since is not None:
        query = query.where(a.decided_at >= since)
    if unwritten:
        query = query.where(a.written_at.is_(None))
    query = query.order_by(a.decided_at, a.id)
    if lead_ids is None:
        return [assignment_from_row(row) for row in conn.execute(query.limit(limit))]
    out: list[Assignment] = []
    for chunk in chunks(lead_ids):
        out.extend(assignment_from_row(row) for row in conn.execute(query.where(a.lead_id.in_(chunk))))
    out.sort(key=lambda x: (x.decided_at, x.id))
    return out[:limit] if limit is not None else out


def apply_outcome(
    conn: sa.Connection, crm: str, lead_id: str, won: bool, at: datetime, now: datetime
) -> bool:
    a = assignments.c
    result = conn.execute(
        assignments.update()
        .where(a.crm == crm, a.lead_id == lead_id, a.reward_applied_at.is_(None), a.superseded_at.is_(None))
        .values(outcome="won" if won else "lost", outcome_at=at, reward_applied_at=now)
    )
    return result.rowcount == 1


def close_assignments(conn: sa.Connection, crm: str, lead_ids: Iterable[str], at: datetime, now: datetime) -> list[str]:
    a = assignments.c
    closed: list[str] = []
    for chunk in chunks(sorted(set(lead_ids))):  # one lock order (by lead id) for every writer
        open_ = sa.and_(a.crm == crm, a.lead_id.in_(chunk), a.reward_applied_at.is_(None), a.outcome.is_(None),
                        a.superseded_at.is_(None))
        ids = [str(r[0]) for r in conn.execute(sa.select(a.lead_id).where(open_).order_by(a.lead_id)
                                               .with_for_update())]
        if ids:
            conn.execute(assignments.update().where(open_, a.lead_id.in_(ids))
                         .values(outcome_at=at, reward_applied_at=now))
            closed += ids
    return closed


def count_by_rep(
    conn: sa.Connection, crm: str, open_only: bool, since: datetime | None, include_shadow: bool
) -> dict[str, int]:
    a = assignments.c
    query = sa.select(a.rep_id, sa.func.count()).where(a.crm == crm, a.rep_id.is_not(None))
    if open_only:  # no outcome, not closed without one (lead removed in the CRM), not superseded
        query = query.where(a.outcome.is_(None), a.reward_applied_at.is_(None), a.superseded_at.is_(None))
    if since is not None:
        query = query.where(a.decided_at >= since)
    if not include_shadow:
        query = query.where(a.shadow.is_(False))
    return {rep: int(n) for rep, n in conn.execute(query.group_by(a.rep_id))}


def queued(conn: sa.Connection, crm: str) -> list[Assignment]:
    a = assignments.c
    query = (sa.select(assignments)
             .where(a.crm == crm, a.rep_id.is_(None), a.shadow.is_(False), a.superseded_at.is_(None),
                    a.outcome.is_(None), a.reward_applied_at.is_(None))
             .order_by(a.decided_at, a.id))
    return [assignment_from_row(row) for row in conn.execute(query)]


def unwritten_or_written_since(conn: sa.Connection, crm: str, since: datetime) -> dict[str, int]:
    """Decisions in effect per rep not yet reflected in a CRM count read at ``since``: not
    written yet, or written at/after it (live decisions only; superseded ones hold no slot)."""
    a = assignments.c
    query = (sa.select(a.rep_id, sa.func.count())
             .where(a.crm == crm, a.rep_id.is_not(None), a.shadow.is_(False), a.superseded_at.is_(None),
                    a.outcome.is_(None), a.reward_applied_at.is_(None),
                    sa.or_(a.written_at.is_(None), a.written_at >= since))
             .group_by(a.rep_id))
    return {rep: int(n) for rep, n in conn.execute(query)}
