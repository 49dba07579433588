"""The router's memory of assignments, kept as columns (cheap to turn into arrays each tick)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

OPEN, WON, LOST = 0, 1, 2


class Ledger:
    """One row per assignment: lead, rep, context, when, propensity, status, proxy flag."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.reps: list[str] = []
        self.contexts: list[dict[str, Any]] = []
        self.at: list[float] = []
        self.propensity: list[float | None] = []
        self.status: list[int] = []
        self.closed_at: list[float | None] = []
        self.proxy: list[bool] = []
        self.row: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, rep: str, context: Mapping[str, Any], at: float, propensity: float | None) -> None:
        """Record a new open assignment."""
        self.row[key] = len(self.keys)
        self.keys.append(key)
        self.reps.append(rep)
        self.contexts.append(dict(context))
        self.at.append(at)
        self.propensity.append(propensity)
        self.status.append(OPEN)
        self.closed_at.append(None)
        self.proxy.append(False)

    def close(self, key: str, won: bool, at: float) -> str | None:
        """Close an open assignment; returns its rep, or None if unknown or already closed."""
        i = self.row.get(key)
        if i is None or self.status[i] != OPEN:
            return None
        self.status[i] = WON if won else LOST
        self.closed_at[i] = at
        return self.reps[i]

    def rekey(self, key: str, new: str) -> None:
        """Keep an assignment's row under another key (its lead is assigned again)."""
        i = self.row.pop(key)
        self.keys[i] = new
        self.row[new] = i

    def drop(self, key: str) -> tuple[str, int] | None:
        """Forget an assignment entirely (its lead is gone, or decided again); returns (rep,
        status) of the dropped row, or None when unknown."""
        i = self.row.get(key)
        if i is None:
            return None
        rep, status = self.reps[i], self.status[i]
        mask = np.ones(len(self.keys), dtype=bool)
        mask[i] = False
        self.keep(mask)
        return rep, status

    def mark_proxy(self, key: str) -> bool:
        """Flag the early proxy (opportunity created) once, on an open assignment."""
        i = self.row.get(key)
        if i is None or self.status[i] != OPEN or self.proxy[i]:
            return False
        self.proxy[i] = True
        return True

    def open_counts(self) -> Counter[str]:
        """Open assignments per rep."""
        return Counter(r for r, s in zip(self.reps, self.status, strict=True) if s == OPEN)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(assigned_at, status, closed_at with NaN for open, proxy) as arrays."""
        closed = np.array(self.closed_at, dtype=float)  # None becomes NaN
        return np.asarray(self.at, dtype=float), np.asarray(self.status, dtype=int), closed, np.asarray(self.proxy, dtype=bool)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` is False (forgotten history)."""
        cols = ("keys", "reps", "contexts", "at", "propensity", "status", "closed_at", "proxy")
        for name in cols:
            values = getattr(self, name)
            setattr(self, name, [v for v, k in zip(values, mask, strict=True) if k])
        self.row = {k: i for i, k in enumerate(self.keys)}

    def to_state(self) -> dict[str, Any]:
        """Column lists (JSON-ready)."""
        return {
            "keys": self.keys,
            "reps": self.reps,
            "contexts": self.contexts,
            "at": self.at,
            "propensity": self.propensity,
            "status": self.status,
            "closed_at": self.closed_at,
            "proxy": self.proxy,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Ledger:
        """Inverse of ``to_state``."""
        led = cls()
        led.keys = [str(k) for k in state["keys"]]
        led.reps = [str(r) for r in state["reps"]]
        led.contexts = [dict(c) for c in state["contexts"]]
        led.at = [float(a) for a in state["at"]]
        led.propensity = [None if p is None else float(p) for p in state["propensity"]]
        led.status = [int(s) for s in state["status"]]
        led.closed_at = [None if c is None else float(c) for c in state["closed_at"]]
        led.proxy = [bool(p) for p in state["proxy"]]
        led.row = {k: i for i, k in enumerate(led.keys)}
        return led
