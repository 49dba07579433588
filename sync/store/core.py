"""leadpilot's state store: watermarks, leads seen, routing decisions, policy state, runs, models.

One SQLite file by default, PostgreSQL when the URL says so; the schema is migrated with
Alembic when the store is opened. Every method is its own transaction unless called inside
``with store.atomic():``, which joins them into one (e.g. scores + decision + policy state)::

    store = Store.open(settings.resolved_store_url, crm=settings.crm)
    since = store.get_watermark("leads")
    known = store.lead_state([lead.id for lead in leads])
    ...
    if store.record_decision(Decision(lead_id, rep_id, "contextual", 7, 0.4, now)):
        ...  # write to the CRM, then
    store.mark_written([lead_id], now)

All datetimes in and out are timezone-aware UTC (naive ones are refused).
Rows are scoped to the ``crm`` the store was opened for, except policy states, runs and
models, which belong to the deployment.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from sync.store import history
from sync.store import leads as q
from sync.store.engine import (
    WRITE_OPTION,
    StoreError,
    create_store_engine,
    is_transient,
    store_schema,
    upgrade,
)
from sync.store.history import PolicyConflict
from sync.store.records import Assignment, Decision, LeadState, LeadStatus, ModelEntry, PolicyState, Run

__all__ = ["Assignment", "Decision", "LeadState", "ModelEntry", "PolicyConflict", "PolicyState", "Run", "Store",
           "StoreError"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# A deadlock or serialization failure rolls the whole transaction back; it is run again this
# many times in all before the error is the caller's.
TX_ATTEMPTS = 5
# A "running" run of another host is taken for dead only after this long (its process cannot
# be asked); on this host the process itself is checked.
STALE_RUN_AFTER = timedelta(hours=6)


class Store:
    """The state store. Build with ``Store.open(url)``; share one instance per process (thread-safe)."""

    def __init__(
        self,
        engine: sa.Engine,
        crm: str = "default",
        park_base: timedelta = timedelta(minutes=5),
        park_cap: timedelta = timedelta(hours=24),
    ) -> None:
        self.engine = engine
        self.crm = crm
        self.park_base = park_base
        self.park_cap = park_cap
        self._conn: contextvars.ContextVar[sa.Connection | None] = contextvars.ContextVar(
            f"leadpilot_store_{id(self)}", default=None
        )

    @classmethod
    def open(cls, url: str, *, crm: str = "default", migrate: bool = True, schema: str | None = None,
             **options: Any) -> Store:
        """Connect to ``url`` (``sqlite:///path`` or ``postgresql://...``) and migrate to the latest schema.

        ``schema``: on PostgreSQL, the schema of an org's tables (``Settings.store_schema``),
        created and migrated on first use; each org's state, policy and models stay apart in it.

        ``crm`` scopes watermarks, leads and assignments (pass ``settings.crm``). ``options``:
        ``park_base`` / ``park_cap`` (timedelta) tune the parking backoff. Opening again is a no-op
        migration. Raises ``StoreError`` for an unusable URL.
        """
        schema = store_schema(url, schema)
        engine = create_store_engine(url, schema)
        try:
            if migrate:
                upgrade(engine, schema=schema)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            shown = engine.url.render_as_string(hide_password=True)
            raise StoreError(f"cannot open the state store at {shown}: {exc.orig}") from exc
        return cls(engine, crm=crm, **options)

    def for_crm(self, crm: str) -> Store:
        """The same database, scoped to another CRM (joins this store's ``atomic()`` blocks)."""
        other = Store(self.engine, crm=crm, park_base=self.park_base, park_cap=self.park_cap)
        other._conn = self._conn
        return other

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __repr__(self) -> str:  # never the password
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r}, crm={self.crm!r})"

    # ------------------------------------------------------------ transactions
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction for every store call inside the block (nested blocks join the outer one).

        An exception leaving the outermost block rolls everything back. Per thread / asyncio task.
        On SQLite the block holds the database's write lock: keep it short, and do not call a
        *different* ``Store`` on the same file inside it (it would wait for the lock).
        """
        if self._conn.get() is not None:
            yield
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                token = self._conn.set(conn)
                try:
                    yield
                finally:
                    self._conn.reset(token)

    @property
    def in_transaction(self) -> bool:
        """Whether this thread / task is inside an ``atomic()`` block."""
        return self._conn.get() is not None

    def retrying(self, work: Callable[[], T], *, attempts: int = TX_ATTEMPTS,
                 on_retry: Callable[[BaseException], None] | None = None) -> T:
        """Run ``work`` (which opens its own ``atomic()`` block) again after a deadlock or
        serialization failure, up to ``attempts`` times in all; ``on_retry`` undoes in-memory
        effects first. Inside an enclosing ``atomic()`` block it runs once: the outer block retries."""
        if self.in_transaction:
            return work()
        for attempt in range(1, attempts + 1):
            try:
                return work()
            except sa.exc.DBAPIError as exc:
                if not is_transient(exc) or attempt == attempts:
                    raise
                log.info("store transaction rolled back (%s); running it again (%d/%d)",
                         type(exc.orig).__name__, attempt + 1, attempts)
                if on_retry is not None:
                    on_retry(exc)
        raise AssertionError("unreachable")

    def _write(self, work: Callable[[sa.Connection], T]) -> T:
        """One write transaction (retried when it deadlocks), or part of the enclosing one."""
        def once() -> T:
            with self.atomic():
                conn = self._conn.get()
                assert conn is not None
                return work(conn)
        return self.retrying(once)

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        conn = self._conn.get()
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as fresh:
            yield fresh

    # ------------------------------------------------------------ watermarks
    def get_watermark(self, stream: str) -> datetime | None:
        """The watermark of ``stream`` (e.g. ``"leads"``, ``"outcomes"``) for this CRM; None before the first run."""
        with self._read() as conn:
            return q.get_watermark(conn, self.crm, stream)

    def set_watermark(self, stream: str, value: datetime, now: datetime | None = None) -> None:
        """Set ``stream``'s watermark. Call only once the writes it covers have succeeded."""
        self._write(lambda conn: q.set_watermark(conn, self.crm, stream, value, now or value))

    def watermarks(self, prefix: str) -> dict[str, tuple[datetime, datetime]]:
        """Every stream starting with ``prefix`` → (value, updated_at): a job's own key-value rows
        (e.g. a backfill's plan and finished chunks)."""
        with self._read() as conn:
            return q.watermarks_under(conn, self.crm, prefix)

    def delete_watermarks(self, prefix: str) -> int:
        """Forget every stream starting with ``prefix``; how many there were."""
        return self._write(lambda conn: q.delete_watermarks_under(conn, self.crm, prefix))

    # ------------------------------------------------------------ leads
    def lead_state(self, lead_ids: Iterable[str]) -> dict[str, LeadState]:
        """Known state of each of ``lead_ids``; ids never seen are absent from the result."""
        with self._read() as conn:
            return q.lead_states(conn, self.crm, lead_ids)

    def upsert_lead_states(self, states: Iterable[LeadState], now: datetime) -> int:
        """Insert or fully overwrite the given lead rows; ``updated_at=None`` becomes ``now``.

        Overwrites every column: start from ``lead_state()`` and ``dataclasses.replace`` it, so that
        ``attempts`` and parking survive. Returns the number of rows written.
        """
        rows = list(states)  # a retry reads them again
        return self._write(lambda conn: q.upsert_lead_states(conn, self.crm, rows, now))

    def set_status(self, lead_ids: Iterable[str], status: LeadStatus, now: datetime) -> None:
        """Set the status of the given leads (other columns kept), creating rows for ids never seen."""
        ids = list(lead_ids)
        self._write(lambda conn: q.set_status(conn, self.crm, ids, status, now))

    def park(self, lead_id: str, reason: str, now: datetime) -> datetime:
        """Park a lead that failed: status ``parked``, ``attempts + 1``, ``last_error=reason``, retry
        after ``park_base * 2**(attempts-1)`` capped at ``park_cap``. Returns ``parked_until``.
        Scores and hashes already known are kept."""
        return self._write(lambda conn: q.park(conn, self.crm, lead_id, reason, now, self.park_base, self.park_cap))

    def due_parked(self, now: datetime) -> list[LeadState]:
        """Parked leads whose ``parked_until`` has passed, earliest first (retry these)."""
        with self._read() as conn:
            return q.parked(conn, self.crm, due_by=now)

    def list_parked(self) -> list[LeadState]:
        """All parked leads with their reasons, earliest retry first (for ``leadpilot status``)."""
        with self._read() as conn:
            return q.parked(conn, self.crm, due_by=None)

    def count_grades(self) -> dict[str, int]:
        """Number of scored leads per grade (A-D) for this CRM: the grade mix."""
        with self._read() as conn:
            return q.count_grades(conn, self.crm)

    def count_leads(self) -> dict[str, int]:
        """Number of leads per status for this CRM."""
        with self._read() as conn:
            return q.count_leads(conn, self.crm)

    # ------------------------------------------------------------ decisions and outcomes
    def record_decision(self, decision: Decision, lead_status: LeadStatus = "scored") -> bool:
        """Record a routing decision and set its lead's status, in one transaction.

        Returns False (and changes nothing) when the lead already has a decision in effect: a
        lead is never assigned twice, even by two processes racing. A decision that
        ``supersedes`` another (a queued lead decided again) takes that one out of effect in the
        same transaction — False when it no longer was. Raises ValueError for a propensity
        outside (0, 1].
        """
        return self._write(lambda conn: q.record_decision(conn, self.crm, decision, lead_status))

    def supersede(self, assignment_id: int, reason: str, now: datetime) -> bool:
        """Take a decision out of effect without a new one (a human took the queued lead, the
        lead closed); it stays in the log. False when it was not in effect."""
        return self._write(lambda conn: q.supersede(conn, self.crm, assignment_id, reason, now))

    def queued(self) -> list[Assignment]:
        """Live decisions in effect that left their lead with the fallback owner, oldest first:
        the queue the cycle drains."""
        with self._read() as conn:
            return q.queued(conn, self.crm)

    def load_since(self, since: datetime) -> dict[str, int]:
        """Open decisions per rep a CRM workload count read at ``since`` cannot include yet."""
        with self._read() as conn:
            return q.unwritten_or_written_since(conn, self.crm, since)

    def mark_written(self, lead_ids: Iterable[str], now: datetime) -> int:
        """The write-back of these leads succeeded: set ``written_at`` on their open decisions and
        status ``written`` (attempts and parking cleared). Returns the number of lead rows updated."""
        ids = list(lead_ids)
        return self._write(lambda conn: q.mark_written(conn, self.crm, ids, now))

    def unwritten_decisions(self, limit: int | None = None) -> list[Assignment]:
        """Recorded decisions not yet written to the CRM (e.g. after a crash), oldest first."""
        with self._read() as conn:
            return q.list_assignments(conn, self.crm, None, None, unwritten=True, limit=limit)

    def assignments(
        self, lead_ids: Iterable[str] | None = None, since: datetime | None = None, *, effective: bool = False
    ) -> list[Assignment]:
        """Recorded decisions (all, or for ``lead_ids``, or decided at/after ``since``), oldest first.

        The log for off-policy evaluation, rewards matching and reports. ``effective``: only
        the decision in effect per lead (superseded ones left out).
        """
        with self._read() as conn:
            return q.list_assignments(conn, self.crm, lead_ids, since, effective=effective)

    def apply_outcome(self, lead_id: str, won: bool, at: datetime, *, now: datetime | None = None) -> bool:
        """Record the outcome of a lead's assignment; True only the first time (exactly-once reward).

        A conditional UPDATE on ``reward_applied_at IS NULL`` that must touch exactly one row; False
        when the lead has no assignment or its reward was already applied. Run it in the same
        ``atomic()`` block as the policy update and ``save_policy_state`` so that a crash applies both
        or neither. ``reward_applied_at`` is ``now`` (default: ``at``).
        """
        return self._write(lambda conn: q.apply_outcome(conn, self.crm, lead_id, won, at, now or at))

    def close_assignments(self, lead_ids: Iterable[str], at: datetime, now: datetime) -> list[str]:
        """Close the open assignments of leads removed from the CRM (deleted, merged away):
        no outcome, ``outcome_at = at``, ``reward_applied_at = now`` — so no reward is ever
        applied to them and they stop counting against their rep's open load. Returns the
        lead ids closed now (already closed ones are left as they are)."""
        ids = list(lead_ids)
        return self._write(lambda conn: q.close_assignments(conn, self.crm, ids, at, now))

    def rep_load(self, *, include_shadow: bool = False) -> dict[str, int]:
        """Open assignments (no outcome yet, not closed by a removal) per rep; the fallback (rep
        None) is not counted."""
        with self._read() as conn:
            return q.count_by_rep(conn, self.crm, open_only=True, since=None, include_shadow=include_shadow)

    def assigned_since(self, since: datetime, *, include_shadow: bool = False) -> dict[str, int]:
        """Assignments decided at/after ``since`` per rep (for per-day caps)."""
        with self._read() as conn:
            return q.count_by_rep(conn, self.crm, open_only=False, since=since, include_shadow=include_shadow)

    # ------------------------------------------------------------ policy state
    def save_policy_state(
        self, name: str, state: Mapping[str, Any], now: datetime, keep: int | None = 1000,
        *, expected_version: int | None = None,
    ) -> int:
        """Save a new version of policy ``name``'s JSON state; returns the version (1, 2, ...).

        ``expected_version``: the version the state was loaded from (0: none saved). The save is
        a compare-and-set: when another process saved a newer version meanwhile it raises
        ``PolicyConflict`` and saves nothing — the caller rolls back what the state covers,
        reloads and redoes it. History is kept; only the ``keep`` most recent versions survive
        (None: all).
        """
        return self._write(lambda conn: history.save_policy_state(conn, name, state, now, keep, expected_version))

    def load_policy_state(self, name: str, version: int | None = None) -> PolicyState | None:
        """The latest saved state of policy ``name`` (or the given version); None if never saved."""
        with self._read() as conn:
            return history.load_policy_state(conn, name, version)

    def latest_policy_version(self, name: str) -> int:
        """The latest saved version of policy ``name`` (0: never saved)."""
        with self._read() as conn:
            return history.latest_policy_version(conn, name)

    def policy_versions(self, name: str) -> list[tuple[int, datetime]]:
        """``(version, saved_at)`` of every kept version of policy ``name``, oldest first."""
        with self._read() as conn:
            return history.policy_versions(conn, name)

    # ------------------------------------------------------------ runs
    def start_run(self, kind: str, now: datetime) -> int:
        """Record the start of a job run (``sync``, ``rewards``, ``train``...); returns its id."""
        return self._write(lambda conn: history.start_run(conn, kind, now))

    def finish_run(
        self,
        run_id: int,
        now: datetime,
        status: str = "ok",
        counts: Mapping[str, int] | None = None,
        api_calls: Mapping[str, int] | None = None,
        errors: str | None = None,
    ) -> None:
        """Record the end of a run with its counts, API calls by kind and error text (no secrets)."""
        self._write(lambda conn: history.finish_run(conn, run_id, now, status, counts, api_calls, errors))

    def close_stale_runs(self, now: datetime, *, stale_after: timedelta = STALE_RUN_AFTER) -> list[int]:
        """Close as ``interrupted`` the runs left "running" by a process that is gone (``kill -9``,
        a crash, a power cut); returns their ids. Call at start-up. A run of a live process on this
        host is left alone; one of another host only once older than ``stale_after``."""
        return self._write(lambda conn: history.close_stale_runs(conn, now, stale_after))

    def recent_runs(self, limit: int = 20, kind: str | None = None) -> list[Run]:
        """The latest runs, newest first."""
        with self._read() as conn:
            return history.recent_runs(conn, limit, kind)

    # ------------------------------------------------------------ trained-model log
    # Which model is champion is the registry's to say (scoring.registry; `leadpilot model
    # promote | rollback`; read through sync.wiring.scorers.champion_model)
    def add_model(
        self, version: str, path: str, metrics: Mapping[str, Any], now: datetime, status: str = "challenger"
    ) -> ModelEntry:
        """Log a trained model. Adding one as ``champion`` retires the previous champion."""
        return self._write(lambda conn: history.add_model(conn, version, path, metrics, status, now))

    def get_model(self, version: str) -> ModelEntry | None:
        """The registry entry of ``version``, or None."""
        with self._read() as conn:
            return history.get_model(conn, version)

    def list_models(self, status: str | None = None) -> list[ModelEntry]:
        """Registered models (optionally only one status), newest first."""
        with self._read() as conn:
            return history.list_models(conn, status)

    def champion(self) -> ModelEntry | None:
        """The last model logged as champion, or None; the registry's champion is the one in use."""
        found = self.list_models("champion")
        return found[0] if found else None

    def set_model_status(self, version: str, status: str, now: datetime) -> ModelEntry:
        """Change a logged model's status; making one ``champion`` retires the logged champion
        atomically. Raises KeyError for an unknown version."""
        return self._write(lambda conn: history.set_model_status(conn, version, status, now))


def open_store(settings: Any, **options: Any) -> Store:
    """``Store.open`` for a ``sync.config.settings.Settings`` (its store URL, CRM and org's schema)."""
    return Store.open(settings.resolved_store_url, crm=settings.crm, schema=settings.store_schema, **options)
