"""A Lead table of up to millions of leads generated on demand from a seed (``--generated-leads N``).

A real org's backfill reads a million leads; the world (``sandbox.world``) simulates each of
its leads and holds every record as a dict, which at a million leads is gigabytes. Generated
leads are old, already-handled leads of the same kind (the world's ``make_leads``, so their
fields and messages look alike) that the world does not simulate: no outcomes, no ground truth.

``GeneratedLeads`` is the store's ``records["Lead"]`` mapping. It holds:

- the generated leads, by position ``i`` (``Id = 00Q9<i:011d>AAA``, ``CreatedDate`` rising
  with ``i`` over the ``span_days`` before the clock's start), built in blocks of ``BLOCK`` from
  ``(seed, block)`` and kept only in a small cache;
- ``delta``: per generated lead, the fields written since (what a backfill writes: a few
  fields), so a million written leads cost their written fields, not a million records;
- ``extra``: ordinary leads inserted as usual (the world's own, a test's), as plain dicts.

A generated record is a ``LazyLead``: a dict holding only the cheap fields (ids, stamps,
``IsDeleted``) until anything else is read, so a query that filters on those (the backfill's
``CreatedDate`` ranges, ``COUNT``/``MIN``/``MAX`` planning) scans a million leads without
building them. Writes to it (``Store.update``) go through to ``delta``.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from datetime import datetime, timedelta
from typing import Any

from sandbox.world.leads import make_leads

BLOCK = 1024  # leads generated together (make_leads draws its uniforms in bulk)
CACHED_BLOCKS = 8
PREFIX = "00Q9"  # Lead ids "00Q9<11 digits>AAA": after every id Store.new_id hands out (00Q0…)
CHEAP = ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
# Old leads end somewhere; these shares of generated leads are closed (not rewritten by a backfill).
P_DISQUALIFIED, P_CONVERTED = 0.10, 0.05


class LazyLead(dict):  # type: ignore[type-arg]
    """One generated lead: the cheap fields now, the rest on first read; writes go to ``delta``."""

    __slots__ = ("_leads", "_i", "_full")

    def __init__(self, leads: GeneratedLeads, i: int, cheap: dict[str, Any]) -> None:
        super().__init__(cheap)
        self._leads, self._i, self._full = leads, i, False

    def _fill(self) -> None:
        if not self._full:
            self._full = True
            base = self._leads.base(self._i)
            delta = self._leads.delta.get(self._leads.id_of(self._i), {})
            dict.update(self, {**base, **delta})

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if not self._full and not dict.__contains__(self, key):
            self._fill()
        return dict.get(self, key, default)

    def __getitem__(self, key: str) -> Any:
        self.get(key)
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._fill()
        return dict.keys(self)

    def values(self) -> Any:
        self._fill()
        return dict.values(self)

    def items(self) -> Any:
        self._fill()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self._fill()
        return dict(dict.items(self))

    def __setitem__(self, key: str, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._leads.delta.setdefault(self._leads.id_of(self._i), {})[key] = value

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if self.get(key) is None and not dict.__contains__(self, key):
            self[key] = default
        return dict.get(self, key)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        raise TypeError("a generated lead's fields cannot be removed; set them to None")


class GeneratedLeads(MutableMapping[str, dict[str, Any]]):
    """``n`` generated leads plus ordinary ones, as one ``Id -> record`` mapping (see the module)."""

    def __init__(self, n: int, seed: int, fields: Callable[[], Mapping[str, str]], owner_id: str,
                 end: datetime, span_days: float = 3 * 365) -> None:
        if n < 0:
            raise ValueError(f"generated leads must be 0 or more, got {n}")
        self.n, self.seed, self.owner_id = n, seed, owner_id
        self._fields = fields
        self.start = end - timedelta(days=span_days)
        self.step = timedelta(days=span_days) / max(n, 1)
        self.extra: dict[str, dict[str, Any]] = {}
        self.delta: dict[str, dict[str, Any]] = {}
        self._blocks: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    # ------------------------------------------------------------------ generated leads
    @staticmethod
    def id_of(i: int) -> str:
        return f"{PREFIX}{i:011d}AAA"

    def index_of(self, rid: str) -> int | None:
        """The position of a generated lead's id (15 or 18 characters), None for any other id."""
        digits = rid[len(PREFIX):15]
        if not rid.startswith(PREFIX) or len(rid) not in (15, 18) or not digits.isdigit():
            return None
        i = int(digits)
        return i if i < self.n else None

    def created(self, i: int) -> datetime:
        return self.start + self.step * i

    def cheap(self, i: int) -> dict[str, Any]:
        rid = self.id_of(i)
        at = self.created(i)
        rec = {"Id": rid, "CreatedDate": at, "LastModifiedDate": at, "SystemModstamp": at, "IsDeleted": False}
        delta = self.delta.get(rid)
        if delta:
            rec.update((k, v) for k, v in delta.items() if k in CHEAP)
        return rec

    def lazy(self, i: int) -> LazyLead:
        return LazyLead(self, i, self.cheap(i))

    def base(self, i: int) -> dict[str, Any]:
        """Generated lead ``i`` as first stored (every field, no writes since)."""
        b = i // BLOCK
        block = self._blocks.get(b)
        if block is None:
            block = self._make_block(b)
            self._blocks[b] = block
            while len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(b)
        at = self.created(i)
        return {**block[i - b * BLOCK], "Id": self.id_of(i), "CreatedDate": at, "LastModifiedDate": at,
                "SystemModstamp": at, "IsDeleted": False}

    def _make_block(self, b: int) -> list[dict[str, Any]]:
        count = min(BLOCK, self.n - b * BLOCK)
        template = dict.fromkeys(self._fields())
        out = []
        for fields, _segment, _obs, _latent, u in make_leads(random.Random(self.seed * 1_000_003 + b), count):
            rec = {**template, **fields, "OwnerId": self.owner_id}
            if u[0] < P_DISQUALIFIED:
                rec["Status"] = "Closed - Not Converted"
            elif u[0] < P_DISQUALIFIED + P_CONVERTED:
                rec.update(Status="Closed - Converted", IsConverted=True)
            out.append(rec)
        return out

    # ------------------------------------------------------------------ the mapping
    def __getitem__(self, rid: str) -> dict[str, Any]:
        rec = self.extra.get(rid)
        if rec is not None:
            return rec
        i = self.index_of(rid) if len(rid) == 18 else None
        if i is None:
            raise KeyError(rid)
        return self.lazy(i)

    def __setitem__(self, rid: str, rec: dict[str, Any]) -> None:
        if self.index_of(rid) is not None and len(rid) == 18:
            raise KeyError(f"{rid} is a generated lead: write its fields (Store.update), do not replace it")
        self.extra[rid] = rec

    def __delitem__(self, rid: str) -> None:
        del self.extra[rid]  # generated leads are deleted as records are (IsDeleted), never purged

    def __iter__(self) -> Iterator[str]:
        yield from self.extra
        for i in range(self.n):
            yield self.id_of(i)

    def __len__(self) -> int:
        return len(self.extra) + self.n

    def __contains__(self, rid: object) -> bool:
        return rid in self.extra or (isinstance(rid, str) and len(rid) == 18 and self.index_of(rid) is not None)

    def values(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        """Every record, ordinary ones first, generated ones lazily (see ``LazyLead``)."""
        yield from list(self.extra.values())
        for i in range(self.n):
            yield self.lazy(i)
