"""Policy state versions, run history and the model registry: the store's slower-moving tables.

Functions over an open ``Connection``; ``sync.store.Store`` wraps each in a transaction.
"""

from __future__ import annotations

import os
import socket
import uuid
import zlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from sync.store.records import ModelEntry, ModelStatus, PolicyState, Run
from sync.store.schema import MODEL_STATUSES, models, policy_states, runs

MAX_RUN_ERROR_CHARS = 1000  # a run's error is read by an admin: what failed, not 6 KB of SQL
# Any constant: the first key of the advisory lock that serialises saves of one policy on PostgreSQL.
_PG_POLICY_LOCK = 0x1EAD_5A7E


class PolicyConflict(RuntimeError):
    """Another process saved policy ``name`` since this one loaded it: reload, redo, save again."""

    def __init__(self, name: str, expected: int, latest: int) -> None:
        super().__init__(f"policy {name!r} is at version {latest}, not {expected} as loaded: "
                         "another leadpilot process saved it meanwhile")
        self.name, self.expected, self.latest = name, expected, latest


# ---------------------------------------------------------------- policy state
def save_policy_state(
    conn: sa.Connection, name: str, state: Mapping[str, Any], now: datetime, keep: int | None,
    expected: int | None = None,
) -> int:
    if conn.dialect.name == "postgresql":
        # Held to the end of the transaction; on SQLite the write transaction's lock does the same.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:a, :b)"),
                     {"a": _PG_POLICY_LOCK, "b": zlib.crc32(name.encode()) - 2**31})
    current = latest_policy_version(conn, name)
    if expected is not None and current != expected:
        raise PolicyConflict(name, expected, current)
    version = current + 1
    conn.execute(policy_states.insert().values(name=name, version=version, state=dict(state), saved_at=now))
    if keep is not None:
        conn.execute(
            policy_states.delete().where(
                policy_states.c.name == name, policy_states.c.version <= version - keep
            )
        )
    return version


def latest_policy_version(conn: sa.Connection, name: str) -> int:
    latest = conn.execute(sa.select(sa.func.max(policy_states.c.version)).where(policy_states.c.name == name))
    return int(latest.scalar() or 0)


def load_policy_state(conn: sa.Connection, name: str, version: int | None) -> PolicyState | None:
    query = sa.select(policy_states).where(policy_states.c.name == name)
    if version is None:
        query = query.order_by(policy_states.c.version.desc()).limit(1)
    else:
        query = query.where(policy_states.c.version == version)
    row = conn.execute(query).first()
    if row is None:
        return None
    return PolicyState(name=row.name, version=row.version, state=row.state, saved_at=row.saved_at)


def policy_versions(conn: sa.Connection, name: str) -> list[tuple[int, datetime]]:
    query = (
        sa.select(policy_states.c.version, policy_states.c.saved_at)
        .where(policy_states.c.name == name)
        .order_by(policy_states.c.version)
    )
    return [(row.version, row.saved_at) for row in conn.execute(query)]


# ---------------------------------------------------------------- runs
_LIFE = uuid.uuid4().hex[:8]  # tells this process from an earlier one with the same pid (PID 1 in a container)


def process_owner() -> str:
    """``host:pid:life`` of this process: whose run a "running" row is."""
    return f"{socket.gethostname()}:{os.getpid()}:{_LIFE}"


def start_run(conn: sa.Connection, kind: str, now: datetime) -> int:
    result = conn.execute(
        runs.insert().values(kind=kind, started_at=now, status="running", counts={}, api_calls={},
                             owner=process_owner())
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def finish_run(
    conn: sa.Connection,
    run_id: int,
    now: datetime,
    status: str,
    counts: Mapping[str, int] | None,
    api_calls: Mapping[str, int] | None,
    errors: str | None,
) -> None:
    if errors is not None and len(errors) > MAX_RUN_ERROR_CHARS:
        errors = errors[: MAX_RUN_ERROR_CHARS - 30] + f"… ({len(errors)} characters in all)"
    values: dict[str, Any] = {"finished_at": now, "status": status, "errors": errors}
    if counts is not None:
        values["counts"] = dict(counts)
    if api_calls is not None:
        values["api_calls"] = dict(api_calls)
    result = conn.execute(runs.update().where(runs.c.id == run_id).values(**values))
    if result.rowcount != 1:
        raise KeyError(f"no run with id {run_id}")


def _alive(owner: str | None, stale_after: timedelta, started_at: datetime, now: datetime) -> bool:
    """Whether the process that opened a run may still be running it."""
    if owner == process_owner():
        return True  # ours
    host, pid, _life = ((owner or "").split(":") + ["", "", ""])[:3]
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False  # our pid, another life: a previous process of this container
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # alive, another user's
        return True
    # Another host (or a row from before owners were kept): only its age can tell.
    return now - started_at < stale_after


def close_stale_runs(conn: sa.Connection, now: datetime, stale_after: timedelta) -> list[int]:
    rows = conn.execute(sa.select(runs.c.id, runs.c.owner, runs.c.started_at).where(runs.c.status == "running"))
    stale = sorted(r.id for r in rows if not _alive(r.owner, stale_after, r.started_at, now))
    if stale:
        conn.execute(
            runs.update()
            .where(runs.c.id.in_(stale), runs.c.status == "running")
            .values(status="interrupted", finished_at=now,
                    errors="interrupted: the process running it ended without closing it (killed or crashed)")
        )
    return stale


def recent_runs(conn: sa.Connection, limit: int, kind: str | None) -> list[Run]:
    query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(runs.c.kind == kind)
    return [
        Run(
            id=row.id,
            kind=row.kind,
            started_at=row.started_at,
            finished_at=row.finished_at,
            status=row.status,
            counts=row.counts,
            api_calls=row.api_calls,
            errors=row.errors,
        )
        for row in conn.execute(query)
    ]


# ---------------------------------------------------------------- model registry
def _model(row: Any) -> ModelEntry:
    return ModelEntry(
        version=row.version,
        path=row.path,
        metrics=row.metrics,
        status=cast(ModelStatus, row.status),
        created_at=row.created_at,
        status_changed_at=row.status_changed_at,
    )


def _check_status(status: str) -> None:
    if status not in MODEL_STATUSES:
        raise ValueError(f"model status {status!r} is not one of {', '.join(MODEL_STATUSES)}")


def add_model(
    conn: sa.Connection, version: str, path: str, metrics: Mapping[str, Any], status: str, now: datetime
) -> ModelEntry:
    _check_status(status)
    if status == "champion":
        _retire_champion(conn, now)
    values = {"version": version, "path": path, "metrics": dict(metrics), "status": status}
    conn.execute(models.insert().values(**values, created_at=now, status_changed_at=now))
    return get_model(conn, version) or _missing(version)


def get_model(conn: sa.Connection, version: str) -> ModelEntry | None:
    row = conn.execute(sa.select(models).where(models.c.version == version)).first()
    return None if row is None else _model(row)


def list_models(conn: sa.Connection, status: str | None) -> list[ModelEntry]:
    query = sa.select(models).order_by(models.c.created_at.desc(), models.c.version.desc())
    if status is not None:
        query = query.where(models.c.status == status)
    return [_model(row) for row in conn.execute(query)]


def set_model_status(conn: sa.Connection, version: str, status: str, now: datetime) -> ModelEntry:
    _check_status(status)
    if status == "champion":
        _retire_champion(conn, now, keep=version)
    result = conn.execute(
        models.update().where(models.c.version == version).values(status=status, status_changed_at=now)
    )
    if result.rowcount != 1:
        _missing(version)
    return get_model(conn, version) or _missing(version)


def _retire_champion(conn: sa.Connection, now: datetime, keep: str | None = None) -> None:
    query = models.update().where(models.c.status == "champion")
    if keep is not None:
        query = query.where(models.c.version != keep)
    conn.execute(query.values(status="retired", status_changed_at=now))


def _missing(version: str) -> ModelEntry:
    raise KeyError(f"no model version {version!r} in the registry")
