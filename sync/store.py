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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sync import store_history as history
from sync.store_engine import WRITE_OPTION, StoreError, create_store_engine, upgrade
from sync.store_records import Assignment, Decision, LeadState, LeadStatus, ModelEntry, PolicyState, Run
from sync.store_schema import LEAD_STATUSES, assignments, leads, watermarks

__all__ = ["Assignment", "Decision", "LeadState", "ModelEntry", "PolicyState", "Run", "Store", "StoreError"]

_CHUNK = 500  # ids per IN (...) clause: well under SQLite's bound-parameter limit
_MAX_ERROR_CHARS = 2000


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
    def open(cls, url: str, *, crm: str = "default", migrate: bool = True, **options: Any) -> Store:
        """Connect to ``url`` (``sqlite:///path`` or ``postgresql://...``) and migrate to the latest schema.

        ``crm`` scopes watermarks, leads and assignments (pass ``settings.crm``). ``options``:
        ``park_base`` / ``park_cap`` (timedelta) tune the parking backoff. Opening again is a no-op
        migration. Raises ``StoreError`` for an unusable URL.
        """
        engine = create_store_engine(url)
        try:
            if migrate:
                upgrade(engine)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            shown = engine.url.render_as_string(hide_password=True)
            raise StoreError(f"cannot open the state store at {shown}: {exc.orig}") from exc
        return cls(engine, crm=crm, **options)

    def for_crm(self, crm: str) -> Store:
        """The same database, scoped to another CRM."""
        return Store(self.engine, crm=crm, park_base=self.park_base, park_cap=self.park_cap)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __repr__(self) -> str:  # never the password
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r}, crm={self.crm!r})"

    # ------------------------------------------------------------ transactions
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction for every store call inside the block (nested blocks join the outer one).

        An exception inside the block rolls everything back. Per thread / asyncio task.
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

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.atomic():
            conn = self._conn.get()
            assert conn is not None
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        conn = self._conn.get()
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as fresh:
            yield fresh

    def _insert(self, conn: sa.Connection, table: sa.Table) -> Any:
        return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)

    # ------------------------------------------------------------ watermarks
    def get_watermark(self, stream: str) -> datetime | None:
        """The watermark of ``stream`` (e.g. ``"leads"``, ``"outcomes"``) for this CRM; None before the first run."""
        with self._read() as conn:
            query = sa.select(watermarks.c.value).where(
                watermarks.c.crm == self.crm, watermarks.c.stream == stream
            )
            return cast(datetime | None, conn.execute(query).scalar())

    def set_watermark(self, stream: str, value: datetime, now: datetime | None = None) -> None:
        """Set ``stream``'s watermark. Call only once the writes it covers have succeeded."""
        with self._tx() as conn:
            stmt = self._insert(conn, watermarks).values(
                crm=self.crm, stream=stream, value=value, updated_at=now or value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["crm", "stream"],
                    set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
                )
            )

    # ------------------------------------------------------------ leads
    def lead_state(self, lead_ids: Iterable[str]) -> dict[str, LeadState]:
        """Known state of each of ``lead_ids``; ids never seen are absent from the result."""
        out: dict[str, LeadState] = {}
        ids = list(dict.fromkeys(lead_ids))
        with self._read() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = sa.select(leads).where(
                    leads.c.crm == self.crm, leads.c.lead_id.in_(ids[start : start + _CHUNK])
                )
                out.update((row.lead_id, _lead(row)) for row in conn.execute(query))
        return out

    def upsert_lead_states(self, states: Iterable[LeadState], now: datetime) -> int:
        """Insert or fully overwrite the given lead rows; ``updated_at=None`` becomes ``now``.

        Overwrites every column: start from ``lead_state()`` and ``dataclasses.replace`` it, so that
        ``attempts`` and parking survive. Returns the number of rows written.
        """
        rows = []
        for state in states:
            if state.status not in LEAD_STATUSES:
                raise ValueError(f"lead status {state.status!r} is not one of {', '.join(LEAD_STATUSES)}")
            row = asdict(state)
            row["updated_at"] = state.updated_at or now
            rows.append({"crm": self.crm, **row})
        if not rows:
            return 0
        with self._tx() as conn:
            stmt = self._insert(conn, leads)
            keys = [c.name for c in leads.c if c.name not in ("crm", "lead_id")]
            stmt = stmt.on_conflict_do_update(
                index_elements=["crm", "lead_id"], set_={k: stmt.excluded[k] for k in keys}
            )
            conn.execute(stmt, rows)
        return len(rows)

    def set_status(self, lead_ids: Iterable[str], status: LeadStatus, now: datetime) -> None:
        """Set the status of the given leads, creating rows for ids never seen."""
        if status not in LEAD_STATUSES:
            raise ValueError(f"lead status {status!r} is not one of {', '.join(LEAD_STATUSES)}")
        rows = [
            {"crm": self.crm, "lead_id": i, "status": status, "attempts": 0, "updated_at": now}
            for i in lead_ids
        ]
        if not rows:
            return
        with self._tx() as conn:
            stmt = self._insert(conn, leads)
            stmt = stmt.on_conflict_do_update(
                index_elements=["crm", "lead_id"], set_={"status": stmt.excluded.status, "updated_at": now}
            )
            conn.execute(stmt, rows)

    def park(self, lead_id: str, reason: str, now: datetime) -> datetime:
        """Park a lead that failed: status ``parked``, ``attempts + 1``, retry after an exponential backoff.

        The backoff is ``park_base * 2**(attempts-1)`` capped at ``park_cap``. Returns ``parked_until``.
        """
        with self._tx() as conn:
            query = (
                sa.select(leads).where(leads.c.crm == self.crm, leads.c.lead_id == lead_id).with_for_update()
            )
            row = conn.execute(query).first()
            state = _lead(row) if row is not None else LeadState(lead_id=lead_id)
            attempts = state.attempts + 1
            # Bounded exponent: 2**40 minutes would overflow timedelta long before the cap applies.
            delay = min(self.park_base * (2 ** min(attempts - 1, 30)), self.park_cap)
            parked = replace(
                state,
                status="parked",
                attempts=attempts,
                last_error=reason[:_MAX_ERROR_CHARS],
                parked_until=now + delay,
                updated_at=now,
            )
            self.upsert_lead_states([parked], now)
        return now + delay

    def due_parked(self, now: datetime) -> list[LeadState]:
        """Parked leads whose ``parked_until`` has passed, earliest first (retry these)."""
        return self._parked(leads.c.parked_until <= now)

    def list_parked(self) -> list[LeadState]:
        """All parked leads with their reasons, earliest retry first (for ``leadpilot status``)."""
        return self._parked(sa.true())

    def _parked(self, condition: sa.ColumnElement[bool]) -> list[LeadState]:
        query = (
            sa.select(leads)
            .where(leads.c.crm == self.crm, leads.c.status == "parked", condition)
            .order_by(leads.c.parked_until, leads.c.lead_id)
        )
        with self._read() as conn:
            return [_lead(row) for row in conn.execute(query)]

    def count_leads(self) -> dict[str, int]:
        """Number of leads per status for this CRM."""
        query = (
            sa.select(leads.c.status, sa.func.count()).where(leads.c.crm == self.crm).group_by(leads.c.status)
        )
        with self._read() as conn:
            return {status: int(n) for status, n in conn.execute(query)}

    # ------------------------------------------------------------ decisions and outcomes
    def record_decision(self, decision: Decision, lead_status: LeadStatus = "scored") -> bool:
        """Record a routing decision and set its lead's status, in one transaction.

        Returns False (and changes nothing) when the lead already has an assignment: a lead is
        never assigned twice, even by two processes racing.
        """
        if not 0.0 < decision.propensity <= 1.0:
            raise ValueError(f"propensity must be in (0, 1], got {decision.propensity!r}")
        row = asdict(decision)
        row.update(crm=self.crm, considered=dict(decision.considered), context=dict(decision.context))
        with self._tx() as conn:
            stmt = self._insert(conn, assignments).values(**row)
            result = conn.execute(stmt.on_conflict_do_nothing(index_elements=["crm", "lead_id"]))
            if result.rowcount != 1:
                return False
            self.set_status([decision.lead_id], lead_status, decision.decided_at)
        return True

    def mark_written(self, lead_ids: Iterable[str], now: datetime) -> int:
        """The write-back of these leads succeeded: set ``written_at`` on their open decisions and
        status ``written`` (attempts and parking cleared). Returns the number of lead rows updated."""
        ids = list(dict.fromkeys(lead_ids))
        updated = 0
        with self._tx() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                conn.execute(
                    assignments.update()
                    .where(
                        assignments.c.crm == self.crm,
                        assignments.c.lead_id.in_(chunk),
                        assignments.c.written_at.is_(None),
                    )
                    .values(written_at=now)
                )
                result = conn.execute(
                    leads.update()
                    .where(leads.c.crm == self.crm, leads.c.lead_id.in_(chunk))
                    .values(status="written", attempts=0, last_error=None, parked_until=None, updated_at=now)
                )
                updated += result.rowcount
        return updated

    def unwritten_decisions(self, limit: int | None = None) -> list[Assignment]:
        """Recorded decisions not yet written to the CRM (e.g. after a crash), oldest first."""
        query = (
            sa.select(assignments)
            .where(assignments.c.crm == self.crm, assignments.c.written_at.is_(None))
            .order_by(assignments.c.decided_at, assignments.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [_assignment(row) for row in conn.execute(query)]

    def assignments(
        self, lead_ids: Iterable[str] | None = None, since: datetime | None = None
    ) -> list[Assignment]:
        """Recorded decisions (all, or for ``lead_ids``, or decided at/after ``since``), oldest first.

        The log for off-policy evaluation and reports.
        """
        query = sa.select(assignments).where(assignments.c.crm == self.crm)
        if since is not None:
            query = query.where(assignments.c.decided_at >= since)
        query = query.order_by(assignments.c.decided_at, assignments.c.id)
        with self._read() as conn:
            if lead_ids is None:
                return [_assignment(row) for row in conn.execute(query)]
            ids = list(dict.fromkeys(lead_ids))
            out: list[Assignment] = []
            for start in range(0, len(ids), _CHUNK):
                chunk_query = query.where(assignments.c.lead_id.in_(ids[start : start + _CHUNK]))
                out.extend(_assignment(row) for row in conn.execute(chunk_query))
            return sorted(out, key=lambda a: (a.decided_at, a.id))

    def apply_outcome(self, lead_id: str, won: bool, at: datetime, *, now: datetime | None = None) -> bool:
        """Record the outcome of a lead's assignment; True only the first time (exactly-once reward).

        A conditional UPDATE on ``reward_applied_at IS NULL`` that must touch exactly one row; False
        when the lead has no assignment or its reward was already applied. Run it in the same
        ``atomic()`` block as the policy update and ``save_policy_state`` so that a crash applies both
        or neither. ``reward_applied_at`` is ``now`` (default: ``at``).
        """
        with self._tx() as conn:
            result = conn.execute(
                assignments.update()
                .where(
                    assignments.c.crm == self.crm,
                    assignments.c.lead_id == lead_id,
                    assignments.c.reward_applied_at.is_(None),
                )
                .values(outcome="won" if won else "lost", outcome_at=at, reward_applied_at=now or at)
            )
            return result.rowcount == 1

    def rep_load(self, *, include_shadow: bool = False) -> dict[str, int]:
        """Open assignments (no outcome yet) per rep; the fallback (rep None) is not counted."""
        return self._count_by_rep(assignments.c.outcome.is_(None), include_shadow)

    def assigned_since(self, since: datetime, *, include_shadow: bool = False) -> dict[str, int]:
        """Assignments decided at/after ``since`` per rep (for per-day caps)."""
        return self._count_by_rep(assignments.c.decided_at >= since, include_shadow)

    def _count_by_rep(self, condition: sa.ColumnElement[bool], include_shadow: bool) -> dict[str, int]:
        query = sa.select(assignments.c.rep_id, sa.func.count()).where(
            assignments.c.crm == self.crm, assignments.c.rep_id.is_not(None), condition
        )
        if not include_shadow:
            query = query.where(assignments.c.shadow.is_(False))
        with self._read() as conn:
            return {rep: int(n) for rep, n in conn.execute(query.group_by(assignments.c.rep_id))}

    # ------------------------------------------------------------ policy state
    def save_policy_state(
        self, name: str, state: Mapping[str, Any], now: datetime, keep: int | None = 1000
    ) -> int:
        """Save a new version of policy ``name``'s JSON state; returns the version (1, 2, ...).

        History is kept; only the ``keep`` most recent versions survive (None: all).
        """
        with self._tx() as conn:
            return history.save_policy_state(conn, name, state, now, keep)

    def load_policy_state(self, name: str, version: int | None = None) -> PolicyState | None:
        """The latest saved state of policy ``name`` (or the given version); None if never saved."""
        with self._read() as conn:
            return history.load_policy_state(conn, name, version)

    def policy_versions(self, name: str) -> list[tuple[int, datetime]]:
        """``(version, saved_at)`` of every kept version of policy ``name``, oldest first."""
        with self._read() as conn:
            return history.policy_versions(conn, name)

    # ------------------------------------------------------------ runs
    def start_run(self, kind: str, now: datetime) -> int:
        """Record the start of a job run (``sync``, ``rewards``, ``train``...); returns its id."""
        with self._tx() as conn:
            return history.start_run(conn, kind, now)

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
        with self._tx() as conn:
            history.finish_run(conn, run_id, now, status, counts, api_calls, errors)

    def recent_runs(self, limit: int = 20, kind: str | None = None) -> list[Run]:
        """The latest runs, newest first."""
        with self._read() as conn:
            return history.recent_runs(conn, limit, kind)

    # ------------------------------------------------------------ model registry
    def add_model(
        self, version: str, path: str, metrics: Mapping[str, Any], now: datetime, status: str = "challenger"
    ) -> ModelEntry:
        """Register a trained model. Adding one as ``champion`` retires the previous champion."""
        with self._tx() as conn:
            return history.add_model(conn, version, path, metrics, status, now)

    def get_model(self, version: str) -> ModelEntry | None:
        """The registry entry of ``version``, or None."""
        with self._read() as conn:
            return history.get_model(conn, version)

    def list_models(self, status: str | None = None) -> list[ModelEntry]:
        """Registered models (optionally only one status), newest first."""
        with self._read() as conn:
            return history.list_models(conn, status)

    def champion(self) -> ModelEntry | None:
        """The model currently in use, or None (cold start)."""
        found = self.list_models("champion")
        return found[0] if found else None

    def set_model_status(self, version: str, status: str, now: datetime) -> ModelEntry:
        """Change a model's status; making one ``champion`` retires the current champion atomically
        (this is promote and rollback). Raises KeyError for an unknown version."""
        with self._tx() as conn:
            return history.set_model_status(conn, version, status, now)


def _lead(row: Any) -> LeadState:
    return LeadState(**{k: v for k, v in row._mapping.items() if k != "crm"})


def _assignment(row: Any) -> Assignment:
    return Assignment(**{k: v for k, v in row._mapping.items() if k != "crm"})


def open_store(settings: Any, **options: Any) -> Store:
    """``Store.open`` for a ``sync.settings.Settings`` (its store URL and CRM)."""
    return Store.open(settings.resolved_store_url, crm=settings.crm, **options)
