"""One ``leadpilot run`` (or ``sync --once``) per state store: a lock the OS or the database owns.

Two daemons on one store would both pull, decide and write the same leads. The guard is taken
at the command's entry, before the CRM is contacted, and held for the life of the process:

- **SQLite**: an exclusive ``flock`` on ``<store file>.lock`` beside the database. The kernel
  releases it when the process exits in any way (``kill -9`` included), so a lock file left
  behind holds nothing and never needs deleting by hand; the file only carries the holder's
  description (host, pid, since) for the refusal message.
- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) on a key derived
  from the store's schema, held by one dedicated connection. The server releases it when that
  session ends (a dead holder's connection is closed by the kernel, so the server sees it go).
  The holder describes itself in the session's ``application_name``; a refused start reads it,
  with the session's start time and address, from ``pg_stat_activity``.

The Python API (``run_cycle``) takes no lock: tests and tools that run cycles side by side on
purpose still can; it is the commands that promise one instance.

An embedded ``leadpilot backfill`` takes a lock of the same kind under another name
(``lock="backfill"``: ``<store file>.backfill.lock``, another advisory key), so two backfills of
one store (one org) never score the same chunks at once, while a ``leadpilot run`` beside it goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from sync.store.engine import create_store_engine, normalise_url

# The first half of the two-integer advisory key: leadpilot's namespace, apart from the store's
# migration lock (a one-integer key) and from other applications sharing the database.
_PG_NAMESPACE = 0x1EAD
_APP_PREFIX = "leadpilot"


@dataclass(frozen=True)
class Holder:
    """Who holds the store: enough for an admin to find it (``ssh host; ps pid``)."""

    host: str
    pid: int | None
    since: datetime | None
    command: str = ""

    def describe(self) -> str:
        who = f"pid {self.pid} on {self.host}" if self.pid is not None else f"a process on {self.host}"
        what = f"`leadpilot {self.command}` " if self.command else ""
        when = f" since {self.since.isoformat(timespec='seconds')}" if self.since is not None else ""
        return f"{what}({who}){when}"


class StoreHeld(Exception):
    """Another leadpilot holds this store; ``holder`` is who, when it could be read."""

    def __init__(self, store: str, holder: Holder | None, lock: str = "store") -> None:
        self.store, self.holder = store, holder
        who = holder.describe() if holder is not None else "another leadpilot process (it is still starting)"
        if lock == "backfill":
            super().__init__(
                f"the state store {store} is being backfilled by {who}. One `leadpilot backfill` per store "
                "at a time (two would score the same chunks): wait for it, or stop it (it releases the store "
                "when it exits, even when killed) and run this again to resume where it stopped.")
            return
        super().__init__(
            f"the state store {store} is in use by {who}. Only one `leadpilot run` or `sync --once` (or "
            "else `leadpilot worker` processes) may work on a store at a time: stop that one first (it releases the store when it exits, even "
            "when killed), or point this one at another store (LEADPILOT_STORE_URL / LEADPILOT_STATE_DIR)."
        )


class InstanceGuard:
    """The held lock; ``release()`` (or process exit) gives it up."""

    def __init__(self, release: Any, where: str) -> None:
        self._release, self.where = release, where

    def release(self) -> None:
        if self._release is not None:
            with contextlib.suppress(Exception):  # the OS or the server releases it anyway
                self._release()
            self._release = None

    def __enter__(self) -> InstanceGuard:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def acquire(store_url: str, command: str, *, now: datetime | None = None,
            shared: bool = False, lock: str = "store") -> InstanceGuard | None:
    """Take the store's single-instance lock for ``command`` or raise ``StoreHeld``.

    ``shared`` (``leadpilot worker``, PostgreSQL only): any number of workers hold the lock
    together, and neither a ``run`` nor a ``sync --once`` starts beside them, nor they beside one
    (the workers' jobs would race its cycles). None for an in-memory SQLite store (nothing else
    can open it). ``lock``: which of the store's locks ("store", or "backfill" for an embedded
    backfill). Errors reaching the store (a PostgreSQL that is down) propagate as they are,
    for the caller's usual store message.
    """
    me = Holder(host=socket.gethostname(), pid=os.getpid(), since=now or datetime.now(UTC), command=command)
    url = normalise_url(store_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return None
        if shared:
            raise ValueError("workers need the store on PostgreSQL")
        return _acquire_file(Path(database).expanduser(), me, lock)
    return _acquire_pg(store_url, me, shared, lock)


def lock_path(database: Path, lock: str = "store") -> Path:
    """The lock file beside a SQLite store file (``<file>.lock``; ``<file>.<lock>.lock`` for another lock)."""
    return database.with_name(database.name + (".lock" if lock == "store" else f".{lock}.lock"))


# ------------------------------------------------------------------ SQLite: a kernel file lock
def _acquire_file(database: Path, me: Holder, lock: str) -> InstanceGuard:
    path = lock_path(database, lock)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_file_holder(path)
        handle.close()
        raise StoreHeld(str(database), holder, lock) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"host": me.host, "pid": me.pid, "since": me.since.isoformat() if me.since else None,
                             "command": me.command}) + "\n")
    handle.flush()

    def release() -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()

    return InstanceGuard(release, str(path))


def _read_file_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("host"):
        return None  # the holder took the lock and has not written itself yet
    since = data.get("since")
    return Holder(host=str(data["host"]), pid=data.get("pid"), since=datetime.fromisoformat(since) if since else None,
                  command=str(data.get("command") or ""))


# ------------------------------------------------------------------ PostgreSQL: an advisory lock
def store_key(schema: str, lock: str = "store") -> int:
    """The advisory key's second half for the store in ``schema`` (advisory locks are per database
    already; the schema tells apart stores sharing one database) and ``lock``. A signed 32-bit integer."""
    value = zlib.crc32(f"leadpilot-{lock}:{schema}".encode())
    return value - 2**32 if value >= 2**31 else value


def _application_name(me: Holder) -> str:
    # PostgreSQL keeps 63 bytes of it: the pid and the command first, the host last (cut if long).
    return f"{_APP_PREFIX} {me.command} pid={me.pid} host={me.host}"[:63]


def _parse_application_name(name: str) -> tuple[str, int | None, str]:
    fields = dict(part.split("=", 1) for part in name.split() if "=" in part)
    parts = name.split()
    command = parts[1] if len(parts) > 1 and "=" not in parts[1] else ""
    pid = int(fields["pid"]) if fields.get("pid", "").isdigit() else None
    return fields.get("host", ""), pid, command


def _acquire_pg(store_url: str, me: Holder, shared: bool, lock: str) -> InstanceGuard:
    engine = create_store_engine(store_url)
    conn = engine.connect()
    try:
        conn.execute(sa.text("SELECT set_config('application_name', :name, false)"),
                     {"name": _application_name(me)})
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one() or "public"
        key = store_key(str(schema), lock)
        take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        got = conn.execute(sa.text(f"SELECT {take}(:ns, :key)"), {"ns": _PG_NAMESPACE, "key": key})
        held = bool(got.scalar_one())
        conn.commit()  # end the implicit transaction; the session-level lock stays
        if not held:
            holder = _pg_holder(conn, key)
            raise StoreHeld(_store_label(store_url, str(schema)), holder, lock)
    except BaseException:
        conn.close()
        engine.dispose()
        raise

    def release() -> None:
        try:
            unlock = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
            conn.execute(sa.text(f"SELECT {unlock}(:ns, :key)"), {"ns": _PG_NAMESPACE, "key": key})
            conn.commit()
        finally:
            conn.close()
            engine.dispose()

    return InstanceGuard(release, f"advisory lock ({_PG_NAMESPACE}, {key})")


def _pg_holder(conn: sa.Connection, key: int) -> Holder | None:
    """The session holding the store's advisory lock, from ``pg_locks`` and ``pg_stat_activity``
    (a two-integer advisory key shows as classid, objid with objsubid 2)."""
    row = conn.execute(sa.text(
        "SELECT a.application_name, a.backend_start, a.client_addr::text, a.client_hostname "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid = :ns AND l.objid = :key AND l.objsubid = 2 "
        "ORDER BY l.mode = 'ExclusiveLock' DESC, a.backend_start LIMIT 1"),
        {"ns": _PG_NAMESPACE, "key": key & 0xFFFFFFFF}).first()
    conn.commit()
    if row is None:
        return None  # released between our try and this look
    name, started, addr, client_host = row
    host, pid, command = _parse_application_name(name or "")
    if not host:
        host = client_host or addr or "an unknown host"
    return Holder(host=host, pid=pid, since=started, command=command)


def _store_label(store_url: str, schema: str) -> str:
    from sync.config.urls import redact_url

    label = redact_url(store_url)
    return label if schema == "public" else f"{label} (schema {schema})"
