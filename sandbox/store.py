"""The sandbox's one record store: both CRM dialects are views of it.

Records are plain dicts keyed by Salesforce field names (the canonical names here);
the HubSpot dialect translates property names at its edge. Every write advances the
record's ``SystemModstamp`` / ``LastModifiedDate`` to the simulated clock, as the real
CRMs do, and callers hold ``store.lock`` for anything that must be consistent.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

OBJECTS = ("Lead", "User", "Opportunity", "Profile", "PermissionSet", "FieldPermissions", "PermissionSetAssignment",
           "PermissionSetGroup", "PermissionSetGroupComponent")
# Setup objects (profiles, permission sets and their grants): readable by SOQL, changed over REST by
# an administrator only (see ``sandbox.salesforce.access``).
SETUP_OBJECTS = ("Profile", "PermissionSet", "FieldPermissions", "PermissionSetAssignment", "PermissionSetGroup",
                 "PermissionSetGroupComponent")

# Standard fields per object and their SOQL/describe type (custom fields are added at run time).
STANDARD_FIELDS: dict[str, dict[str, str]] = {
    "Lead": {
        "Id": "id",
        "FirstName": "string",
        "LastName": "string",
        "Title": "string",
        "Company": "string",
        "Industry": "picklist",
        "NumberOfEmployees": "int",
        "AnnualRevenue": "currency",
        "Country": "string",
        "State": "string",
        "LeadSource": "picklist",
        "Status": "picklist",
        "Description": "textarea",
        "Email": "email",
        "OwnerId": "reference",
        "IsConverted": "boolean",
        "ConvertedOpportunityId": "reference",
        "ConvertedDate": "date",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
        "IsDeleted": "boolean",
        "MasterRecordId": "reference",
        "LastActivityDate": "date",
    },
    "User": {
        "Id": "id",
        "Name": "string",
        "FirstName": "string",
        "LastName": "string",
        "Email": "email",
        "Username": "string",
        "IsActive": "boolean",
        "UserType": "picklist",
        "ProfileId": "reference",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "Opportunity": {
        "Id": "id",
        "Name": "string",
        "StageName": "picklist",
        "IsClosed": "boolean",
        "IsWon": "boolean",
        "Amount": "currency",
        "CloseDate": "date",
        "OwnerId": "reference",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
        "IsDeleted": "boolean",
    },
    "Profile": {
        "Id": "id",
        "Name": "string",
        "UserLicenseName": "string",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "PermissionSet": {
        "Id": "id",
        "Name": "string",
        "Label": "string",
        "Description": "textarea",
        "IsOwnedByProfile": "boolean",
        "ProfileId": "reference",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "FieldPermissions": {
        "Id": "id",
        "ParentId": "reference",
        "SobjectType": "string",
        "Field": "string",
        "PermissionsRead": "boolean",
        "PermissionsEdit": "boolean",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "PermissionSetAssignment": {
        "Id": "id",
        "PermissionSetId": "reference",
        "PermissionSetGroupId": "reference",
        "AssigneeId": "reference",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "PermissionSetGroup": {
        "Id": "id",
        "DeveloperName": "string",
        "MasterLabel": "string",
        "Status": "picklist",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
    "PermissionSetGroupComponent": {
        "Id": "id",
        "PermissionSetGroupId": "reference",
        "PermissionSetId": "reference",
        "CreatedDate": "datetime",
        "LastModifiedDate": "datetime",
        "SystemModstamp": "datetime",
    },
}

ID_PREFIX = {"Lead": "00Q", "User": "005", "Opportunity": "006", "Profile": "00e", "PermissionSet": "0PS",
             "FieldPermissions": "01k", "PermissionSetAssignment": "0Pa", "PermissionSetGroup": "0PG",
             "PermissionSetGroupComponent": "0PC"}
# Sandbox-only record markers (never a field: no dialect serialises them as such).
MERGED = "_merged"  # ids merged into this record (HubSpot hs_merged_object_ids)
UNREADABLE_STAMP = "_unreadable_stamp"  # serve the modification stamp as missing / not a date-time
ACTIVITY_AT = "_activity_at"  # when an activity was last logged (HubSpot hs_last_sales_activity_timestamp)


class UnknownField(KeyError):
    """A write or query named a field the object does not have."""

    def __init__(self, obj: str, name: str) -> None:
        super().__init__(name)
        self.obj = obj
        self.name = name


class SimClock:
    """The simulated clock. Starts at a fixed instant; only ``advance`` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()
        self._tick = 0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def stamp(self) -> datetime:
        """A strictly increasing write timestamp (1 ms apart) so ordering by modstamp is total-ish."""
        with self._lock:
            self._tick += 1
            self._now = self._now + timedelta(milliseconds=1)
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now = self._now + delta
            return self._now


@dataclass
class Store:
    clock: SimClock = field(default_factory=SimClock)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Lead may be a ``sandbox.generated.GeneratedLeads`` (millions of leads made on demand).
    records: dict[str, MutableMapping[str, dict[str, Any]]] = field(default_factory=lambda: {o: {} for o in OBJECTS})
    custom_fields: dict[str, dict[str, str]] = field(default_factory=lambda: {o: {} for o in OBJECTS})
    _seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    # Opportunity Id -> the Lead it was converted from (HubSpot's deal -> contact association).
    opportunity_lead: dict[str, str] = field(default_factory=dict)
    # Bumped by every insert/update/schema change: lets read-side caches know they are stale.
    version: int = 0
    # (object, record id) -> how many API writes set its owner / any leadpilot field (``write``).
    writes: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    # ------------------------------------------------------------------ schema
    def fields(self, obj: str) -> dict[str, str]:
        return {**STANDARD_FIELDS[obj], **self.custom_fields[obj]}

    def has_field(self, obj: str, name: str) -> bool:
        f = self.fields(obj)
        return name in f or name.lower() in {k.lower() for k in f}

    def canonical_field(self, obj: str, name: str) -> str:
        """Field names are case-insensitive in SOQL; return the declared spelling."""
        if name in STANDARD_FIELDS[obj] or name in self.custom_fields[obj]:
            return name  # the common case, without scanning every field
        for k in self.fields(obj):
            if k.lower() == name.lower():
                return k
        raise UnknownField(obj, name)

    def add_field(self, obj: str, name: str, ftype: str) -> bool:
        """Create a custom field; False when it already exists."""
        with self.lock:
            if self.has_field(obj, name):
                return False
            self.custom_fields[obj][name] = ftype
            self.version += 1
            return True

    # ------------------------------------------------------------------ records
    def new_id(self, obj: str) -> str:
        n = next(self._seq)
        return f"{ID_PREFIX[obj]}{n:012d}AAA"[:18]

    def insert(self, obj: str, record: dict[str, Any], at: datetime | None = None) -> str:
        with self.lock:
            rid = record.get("Id") or self.new_id(obj)
            ts = at or self.clock.stamp()
            rec: dict[str, Any] = dict.fromkeys(self.fields(obj))
            rec.update(record)
            rec["Id"] = rid
            rec.setdefault("CreatedDate", ts)
            if rec.get("CreatedDate") is None:
                rec["CreatedDate"] = ts
            rec["LastModifiedDate"] = ts
            rec["SystemModstamp"] = ts
            if "IsDeleted" in rec and rec["IsDeleted"] is None:
                rec["IsDeleted"] = False
            self.records[obj][rid] = rec
            self.version += 1
            return rid

    def purge(self, obj: str, rid: str) -> bool:
        """Remove a record for good, no recycle bin (setup objects: a revoked grant); False when
        there was none."""
        with self.lock:
            gone = self.records[obj].pop(rid, None) is not None
            self.version += gone
            return gone

    def get(self, obj: str, rid: str) -> dict[str, Any] | None:
        return self.records[obj].get(rid)

    def all(self, obj: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.records[obj].values())

    def update(self, obj: str, rid: str, values: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        """Apply a write: unknown fields raise ``UnknownField``; bumps the modstamp (ours too)."""
        with self.lock:
            rec = self.records[obj].get(rid)
            if rec is None:
                raise KeyError(rid)
            clean = {self.canonical_field(obj, k): v for k, v in values.items()}
            rec.update(clean)
            ts = at or self.clock.stamp()
            rec["LastModifiedDate"] = ts
            rec["SystemModstamp"] = ts
            self.version += 1
            return rec

    def write(self, obj: str, rid: str, values: dict[str, Any]) -> dict[str, Any]:
        """``update`` for a client's write through either dialect's API, counted per record: how many
        writes set its owner (``OwnerId``, HubSpot's ``hubspot_owner_id``) and how many set any
        leadpilot field (``GET /_sandbox/writes``). The world's own changes are not counted."""
        with self.lock:
            rec = self.update(obj, rid, values)
            names = {self.canonical_field(obj, k) for k in values}
            counts = self.writes.setdefault((obj, rid), {"owner": 0, "leadpilot": 0})
            counts["owner"] += "OwnerId" in names
            counts["leadpilot"] += any(n.lower().startswith("leadpilot") for n in names)
            return rec

    def write_counts(self, obj: str, *, clear: bool = False) -> dict[str, dict[str, int]]:
        """Per record of ``obj``, the client writes ``write`` counted (``clear``: and start again)."""
        with self.lock:
            out = {rid: dict(c) for (o, rid), c in sorted(self.writes.items()) if o == obj}
            if clear:
                self.writes = {k: c for k, c in self.writes.items() if k[0] != obj}
            return out

    # ------------------------------------------------------------------ removals (admin API)
    def delete(self, obj: str, rid: str, master: str | None = None) -> dict[str, Any]:
        """Move a record to the recycle bin: ``IsDeleted``, modstamp = now (``queryAll`` still
        returns it, ``query`` no longer); ``master``: a merge's survivor (``MasterRecordId``)."""
        with self.lock:
            rec = self.records[obj].get(rid)
            if rec is None or rec.get("IsDeleted"):
                raise KeyError(rid)
            values: dict[str, Any] = {"IsDeleted": True}
            if master is not None:
                values["MasterRecordId"] = master
            return self.update(obj, rid, values)

    def merge(self, obj: str, master: str, losers: list[str]) -> dict[str, Any]:
        """Merge ``losers`` into ``master``: the losers are deleted with ``MasterRecordId`` set,
        the survivor changes (its modstamp moves) and remembers whom it absorbed."""
        with self.lock:
            rec = self.records[obj].get(master)
            if rec is None or rec.get("IsDeleted") or master in losers:
                raise KeyError(master)
            for loser in losers:
                self.delete(obj, loser, master=master)
            rec[MERGED] = [*rec.get(MERGED, []), *losers]
            return self.update(obj, master, {})

    def log_activity(self, rid: str, at: datetime) -> dict[str, Any]:
        """A rep logged a call, email or meeting on lead ``rid`` at ``at``: Salesforce's
        ``LastActivityDate`` (a date) and HubSpot's ``hs_last_sales_activity_timestamp`` move;
        as on Salesforce, the lead's own modstamp does not."""
        with self.lock:
            rec = self.records["Lead"].get(rid)
            if rec is None:
                raise KeyError(rid)
            rec["LastActivityDate"] = at.date()
            rec[ACTIVITY_AT] = at
            self.version += 1
            return rec

    def break_stamp(self, obj: str, rid: str) -> dict[str, Any]:
        """From now on the record's modification stamp is served unreadable (it still sorts and
        filters by its true value, so pulls return it where they would)."""
        with self.lock:
            rec = self.records[obj].get(rid)
            if rec is None:
                raise KeyError(rid)
            rec[UNREADABLE_STAMP] = True
            return self.update(obj, rid, {})
