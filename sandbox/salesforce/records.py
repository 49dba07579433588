"""Record reads and writes as the Salesforce API sees them: ids, JSON records, and the
per-record checks a real org makes before it saves (unknown / read-only fields, value
types, owner ids). Used by the REST (``rest``) and Bulk 2.0 (``bulk``) handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.salesforce.values import READ_ONLY, BadValue, coerce, to_json
from sandbox.store import ID_PREFIX, UNREADABLE_STAMP, Store

if TYPE_CHECKING:
    from sandbox.salesforce.access import FieldAccess

# Text limits a real org enforces (Text fields default to 255; long text areas go to 131,072).
MAX_LENGTH = {"string": 255, "email": 80, "textarea": 131_072}


@dataclass
class RecordError(Exception):
    """Why one record was not saved: Salesforce's ``statusCode``, message and fields."""

    code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def save_error(self) -> dict[str, Any]:
        """The ``errors[]`` item of a SaveResult."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def rest_error(self) -> dict[str, Any]:
        """The item of a REST error list body."""
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}


def find_id(store: Store, obj: str, rid: Any) -> str:
    """The stored id for ``rid`` (15- or 18-character), or a ``RecordError``."""
    if not isinstance(rid, str) or not rid:
        raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", [])
    if len(rid) not in (15, 18) or not rid.isalnum() or not rid.startswith(ID_PREFIX[obj]):
        raise RecordError("MALFORMED_ID", f"{obj} ID: id value of incorrect type: {rid}", ["Id"])
    full = rid if len(rid) == 18 else rid + "AAA"  # the store's 18-char ids end in AAA (see Store.new_id)
    rec = store.get(obj, full)
    if rec is None:
        raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
    if rec.get("IsDeleted"):
        raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
    return full


def prepare(store: Store, obj: str, values: dict[str, Any], unknown_code: str = "INVALID_FIELD",
            access: FieldAccess | None = None) -> dict[str, Any]:
    """Check the fields of one update and return them canonical and typed.

    ``access``: the calling user's field-level security (a field they cannot read does not
    exist for them; one they can read but not edit is refused as a real org refuses it).
    """
    types = access.fields(obj) if access is not None else store.fields(obj)
    lower = {k.lower(): k for k in types}
    clean: dict[str, Any] = {}
    for raw, value in values.items():
        name = lower.get(raw.lower())
        if name is None:
            raise RecordError(unknown_code, f"No such column '{raw}' on sobject of type {obj}", [])
        if name in READ_ONLY or (access is not None and not access.editable(obj, name)):
            raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE",
                              f"Unable to create/update fields: {name}. Please check the security settings of "
                              "this field and verify that it is read/write for your profile or permission set.",
                              [name])
        try:
            clean[name] = coerce(name, types[name], value)
        except BadValue as exc:
            raise RecordError("INVALID_TYPE_ON_FIELD_IN_RECORD", str(exc), [name]) from None
        limit = MAX_LENGTH.get(types[name])
        if limit is not None and isinstance(clean[name], str) and len(clean[name]) > limit:
            raise RecordError("STRING_TOO_LONG", f"{name}: data value too large: {clean[name][:40]}... "
                              f"(max length={limit})", [name])
    if "OwnerId" in clean:
        clean["OwnerId"] = _check_owner(store, obj, clean["OwnerId"])
    return clean


def _check_owner(store: Store, obj: str, owner: Any) -> str:
    """The owner's 18-character id (stored like a real org stores it), or a ``RecordError``."""
    if owner in (None, ""):
        raise RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [OwnerId]", ["OwnerId"])
    try:
        uid = find_id(store, "User", owner)
    except RecordError:
        raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["OwnerId"]) from None
    user = store.get("User", uid)
    if user is not None and not user.get("IsActive"):
        raise RecordError("INACTIVE_OWNER_OR_USER",
                          f"operation performed with inactive user [{uid}] as owner of {obj.lower()}", [])
    return uid


def aggregate_record(row: dict[str, Any], q: Any, version: str) -> dict[str, Any]:
    """One group of an aggregate query as REST JSON: an ``AggregateResult`` (no url), the
    grouped fields then each count under its alias."""
    out: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
    for name in q.fields:
        out[name] = to_json(row.get(name))
    for alias, _, fn in q.aggregates:
        out[alias] = int(row[alias]) if fn == "COUNT" else to_json(row[alias])
    return out


def to_record(rec: dict[str, Any], obj: str, fields: tuple[str, ...] | list[str], version: str) -> dict[str, Any]:
    """A store record as REST JSON: ``attributes`` first, then ``fields`` in order."""
    out: dict[str, Any] = {"attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{rec['Id']}"}}
    broken = rec.get(UNREADABLE_STAMP)
    for name in fields:
        out[name] = None if broken and name in ("SystemModstamp", "LastModifiedDate") else to_json(rec.get(name))
    return out
