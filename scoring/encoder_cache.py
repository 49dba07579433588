"""A persistent embedding cache: (namespace, sha256 of text) -> float32 vector.

The namespace is the encoder's ``cache_namespace`` (model id + everything that changes the
vector, e.g. the max length), so a different model or setting never reads stale vectors.
Storage is one SQLite file (stdlib ``sqlite3``; vectors as raw float32 blobs) placed next to
the state store, with an in-memory LRU layer in front. Lookups and writes are batched: one
query per chunk of keys and one transaction per write, never a query per row.

The file holds only hashes and vectors, never lead text.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

# SQLite's default limit on host parameters is 999 in old builds (32766 since 3.32); stay below both.
_CHUNK = 900

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    namespace TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (namespace, text_sha256)
) WITHOUT ROWID
"""


def text_key(text: str) -> bytes:
    """The cache key of one text: the 32-byte sha256 digest of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Embeddings by (namespace, text hash): an in-memory LRU over an optional SQLite file.

    ``EmbeddingCache(None)`` keeps vectors in memory only; ``EmbeddingCache(path)`` also
    persists them, so a restarted daemon never re-encodes unchanged text. Safe to share
    between threads (one lock around the connection and the memory layer).
    """

    def __init__(self, path: str | Path | None = None, *, memory_items: int = 200_000) -> None:
        if memory_items < 0:
            raise ValueError(f"memory_items must be >= 0, got {memory_items}")
        self.path = Path(path) if path is not None else None
        self.memory_items = memory_items
        self._memory: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                # check_same_thread=False: the lock above serialises access from the daemon's threads
                self._conn = sqlite3.connect(str(self.path), check_same_thread=False)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(_SCHEMA)
                self._conn.commit()
            except sqlite3.DatabaseError as exc:
                raise ValueError(
                    f"embedding cache {self.path} is not a usable SQLite file ({exc}); "
                    "delete it (it is only a cache) or point the cache elsewhere"
                ) from exc

    def __repr__(self) -> str:
        return (
            f"EmbeddingCache(path={str(self.path) if self.path else None!r}, in_memory={len(self._memory)})"
        )

    def get_many(self, namespace: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Vectors found for ``keys`` (missing keys are absent from the result)."""
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            missing: list[bytes] = []
            for key in keys:
                vec = self._memory.get((namespace, key))
                if vec is None:
                    missing.append(key)
                else:
                    self._memory.move_to_end((namespace, key))
                    found[key] = vec
            if missing and self._conn is not None:
                from_disk = self._select(namespace, missing)
                found.update(from_disk)
                self._remember(namespace, from_disk.items())
        return found

    def put_many(self, namespace: str, items: Mapping[bytes, np.ndarray]) -> None:
        """Store vectors (float32, 1-d) under ``namespace``; one transaction for the batch."""
        if not items:
            return
        clean = {k: np.ascontiguousarray(v, dtype=np.float32).reshape(-1) for k, v in items.items()}
        with self._lock:
            self._remember(namespace, clean.items())
            if self._conn is not None:
                rows = [(namespace, k, int(v.shape[0]), v.tobytes()) for k, v in clean.items()]
                with self._conn:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO embeddings(namespace, text_sha256, dim, vector) VALUES (?,?,?,?)",
                        rows,
                    )

    def __len__(self) -> int:
        """Number of stored vectors (on disk when persisted, else in memory)."""
        with self._lock:
            if self._conn is None:
                return len(self._memory)
            return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def clear_memory(self) -> None:
        """Drop the in-memory layer (the file is kept)."""
        with self._lock:
            self._memory.clear()

    def close(self) -> None:
        """Close the SQLite connection; the cache keeps working in memory only."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _select(self, namespace: str, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        assert self._conn is not None
        out: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT text_sha256, dim, vector FROM embeddings WHERE namespace = ? AND text_sha256 IN ({marks})",
                [namespace, *chunk],
            ).fetchall()
            for key, dim, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] == dim:  # a torn or foreign row is treated as a miss, then overwritten
                    out[bytes(key)] = vec
        return out

    def _remember(self, namespace: str, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        if self.memory_items == 0:
            return
        for key, vec in items:
            self._memory[(namespace, key)] = vec
            self._memory.move_to_end((namespace, key))
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)


def encode_through_cache(
    texts: Sequence[str | None],
    dim: int,
    cache: EmbeddingCache | None,
    namespace: str,
    encode_uncached: Callable[[list[str]], np.ndarray],
) -> np.ndarray:
    """Vectors for ``texts`` (float32, ``(len(texts), dim)``): each distinct non-blank text is
    encoded once, from ``cache`` where it holds it, else by ``encode_uncached`` (and stored);
    blank and missing texts get the zero row. Shared by every encoder backend."""
    clean = ["" if t is None else str(t) for t in texts]
    out = np.zeros((len(clean), dim), dtype=np.float32)
    rows_by_text: dict[str, list[int]] = {}
    for i, text in enumerate(clean):
        if text.strip():
            rows_by_text.setdefault(text, []).append(i)
    if not rows_by_text:
        return out
    unique = list(rows_by_text)
    keys = [text_key(t) for t in unique]
    found = cache.get_many(namespace, keys) if cache is not None else {}
    todo = [j for j, key in enumerate(keys) if key not in found]
    if todo:
        vectors = encode_uncached([unique[j] for j in todo])
        fresh = {keys[j]: vectors[n] for n, j in enumerate(todo)}
        if cache is not None:
            cache.put_many(namespace, fresh)
        found = {**found, **fresh}
    for text, key in zip(unique, keys, strict=True):
        out[rows_by_text[text]] = found[key]
    return out
