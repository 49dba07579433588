"""Who is calling, and what that user may see: field-level security and the setup objects.

A real org grants a custom field created through the Metadata API to nobody: ``describe``
omits it, SOQL naming it fails with ``INVALID_FIELD`` ("No such column …") and writes fail —
for an administrator too — until a ``FieldPermissions`` row of a permission set assigned to the
user (``PermissionSetAssignment``) grants read (and edit). Standard fields are visible to all.
The sandbox enforces exactly that for every Salesforce call, keyed by the user the access token
was issued to (``SandboxContext.token_users``). A permission set group assigned to the user
(``PermissionSetAssignment.PermissionSetGroupId``) grants what its components
(``PermissionSetGroupComponent``) grant.

Setup objects (``PermissionSet``, ``FieldPermissions``, ``PermissionSetAssignment``,
``PermissionSetGroup``, ``PermissionSetGroupComponent``) are
created, updated and deleted over REST by an administrator (profile "System Administrator")
only; their checks and error bodies are those of a real org (crm-apis.md §6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.context import SandboxContext
from sandbox.salesforce.records import RecordError
from sandbox.store import STANDARD_FIELDS, Store

ADMIN_PROFILE = "System Administrator"
_DEVELOPER_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*$")


def user_id(ctx: SandboxContext, token: str | None) -> str | None:
    """The User id behind an access token (``None``: unknown token or user)."""
    username = ctx.token_user(token)
    if username is None:
        return None
    for rec in ctx.store.all("User"):
        if rec.get("Username") == username:
            return str(rec["Id"])
    return None


def is_admin(store: Store, uid: str | None) -> bool:
    user = store.get("User", uid or "")
    profile = store.get("Profile", str(user.get("ProfileId") or "")) if user else None
    return profile is not None and profile.get("Name") == ADMIN_PROFILE


@dataclass
class FieldAccess:
    """One user's view of the schema: standard fields, and the custom fields granted to them."""

    store: Store
    uid: str | None
    _grants: dict[str, dict[str, tuple[bool, bool]]] = field(default_factory=dict)

    def grants(self, obj: str) -> dict[str, tuple[bool, bool]]:
        """Custom field (lower-case name) → (read, edit) from the user's assigned permission sets."""
        if obj not in self._grants:
            self._grants[obj] = _grants(self.store, self.uid, obj)
        return self._grants[obj]

    def fields(self, obj: str) -> dict[str, str]:
        """The fields this user sees on ``obj`` (what describe lists and SOQL may name)."""
        granted = self.grants(obj)
        return {name: t for name, t in self.store.fields(obj).items()
                if name in STANDARD_FIELDS[obj] or granted.get(name.lower(), (False, False))[0]}

    def editable(self, obj: str, name: str) -> bool:
        return name in STANDARD_FIELDS[obj] or self.grants(obj).get(name.lower(), (False, False))[1]


def access_for(ctx: SandboxContext, token: str | None) -> FieldAccess:
    return FieldAccess(ctx.store, user_id(ctx, token))


def _grants(store: Store, uid: str | None, obj: str) -> dict[str, tuple[bool, bool]]:
    with store.lock:
        mine = [a for a in store.records["PermissionSetAssignment"].values() if a.get("AssigneeId") == uid]
        groups = {a.get("PermissionSetGroupId") for a in mine if a.get("PermissionSetGroupId")}
        sets = {a.get("PermissionSetId") for a in mine if a.get("PermissionSetId")}
        sets |= {c.get("PermissionSetId") for c in store.records["PermissionSetGroupComponent"].values()
                 if c.get("PermissionSetGroupId") in groups}
        out: dict[str, tuple[bool, bool]] = {}
        for fp in store.records["FieldPermissions"].values():
            sobject, _, name = str(fp.get("Field") or "").partition(".")
            if fp.get("ParentId") not in sets or sobject.lower() != obj.lower():
                continue
            read, edit = out.get(name.lower(), (False, False))
            out[name.lower()] = (read or bool(fp.get("PermissionsRead")), edit or bool(fp.get("PermissionsEdit")))
        return out


# ---------------------------------------------------------------------- setup objects over REST
def check_setup_write(store: Store, uid: str | None, obj: str, rid: str | None, values: dict[str, Any]) -> None:
    """Raise ``RecordError`` unless an administrator may save ``values`` on ``obj`` (``rid``:
    the record updated, ``None`` for an insert). ``values`` are already canonical and typed."""
    if not is_admin(store, uid):
        raise RecordError("INSUFFICIENT_ACCESS_OR_READONLY",
                          "insufficient access rights on cross-reference id", [])
    if obj == "Profile":
        raise RecordError("INVALID_TYPE_FOR_OPERATION", "entity type cannot be inserted: Profile", [])
    merged = {**(store.get(obj, rid) or {} if rid else {}), **values}
    if obj == "PermissionSet":
        _permission_set(store, rid, merged)
    elif obj == "FieldPermissions":
        _field_permissions(store, rid, merged)
    elif obj == "PermissionSetAssignment":
        _assignment(store, rid, merged)
    elif obj == "PermissionSetGroup":
        _required(merged, "DeveloperName", "MasterLabel")
        _duplicate(store, "PermissionSetGroup", rid, {"DeveloperName": merged["DeveloperName"]}, "DeveloperName")
    elif obj == "PermissionSetGroupComponent":
        _required(merged, "PermissionSetGroupId", "PermissionSetId")
        for ref, target in (("PermissionSetGroupId", "PermissionSetGroup"), ("PermissionSetId", "PermissionSet")):
            if store.get(target, str(merged[ref])) is None:
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [ref])
        _duplicate(store, "PermissionSetGroupComponent", rid, {"PermissionSetGroupId": merged["PermissionSetGroupId"],
                                                              "PermissionSetId": merged["PermissionSetId"]}, "<unknown>")


def _required(merged: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if merged.get(n) in (None, "")]
    if missing:
        raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)


def _duplicate(store: Store, obj: str, rid: str | None, same: dict[str, Any], what: str) -> None:
    for other in store.records[obj].values():
        if other["Id"] != rid and all(str(other.get(k) or "").lower() == str(v or "").lower() for k, v in same.items()):
            raise RecordError("DUPLICATE_VALUE", f"duplicate value found: {what} duplicates value on record "
                              f"with id: {other['Id']}", list(same))


def _permission_set(store: Store, rid: str | None, merged: dict[str, Any]) -> None:
    _required(merged, "Name", "Label")
    if not _DEVELOPER_NAME.match(str(merged["Name"])) or str(merged["Name"]).endswith("_"):
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", "The API Name can only contain underscores and alphanumeric "
                          "characters. It must be unique, begin with a letter, not include spaces, not end with an "
                          "underscore, and not contain two consecutive underscores.", ["Name"])
    _duplicate(store, "PermissionSet", rid, {"Name": merged["Name"]}, "Name")


def _field_permissions(store: Store, rid: str | None, merged: dict[str, Any]) -> None:
    _required(merged, "ParentId", "SobjectType", "Field")
    if store.get("PermissionSet", str(merged["ParentId"])) is None:
        raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["ParentId"])
    sobject, _, name = str(merged["Field"]).partition(".")
    obj = next((o for o in STANDARD_FIELDS if o.lower() == sobject.lower()), None)
    if obj is None or sobject.lower() != str(merged["SobjectType"]).lower() or not store.has_field(obj, name):
        raise RecordError("FIELD_INTEGRITY_EXCEPTION",
                          f"Field Name: bad value for restricted picklist field: {merged['Field']}", ["Field"])
    if name in STANDARD_FIELDS[obj] and name in ("Id", "OwnerId", "IsConverted", "CreatedDate", "SystemModstamp",
                                                 "LastModifiedDate", "IsDeleted"):
        raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", f"{merged['Field']} is not permissionable", ["Field"])
    if merged.get("PermissionsEdit") and not merged.get("PermissionsRead"):
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", f"Permission Read {merged['Field']} is required for "
                          f"Permission Edit {merged['Field']}", ["PermissionsRead"])
    _duplicate(store, "FieldPermissions", rid, {"ParentId": merged["ParentId"], "Field": merged["Field"]},
               "<unknown>")


def _assignment(store: Store, rid: str | None, merged: dict[str, Any]) -> None:
    _required(merged, "AssigneeId")
    if bool(merged.get("PermissionSetId")) == bool(merged.get("PermissionSetGroupId")):
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", "Specify a permission set or a permission set group, not both",
                          ["PermissionSetId", "PermissionSetGroupId"])
    target = ("PermissionSet", "PermissionSetId") if merged.get("PermissionSetId") else \
        ("PermissionSetGroup", "PermissionSetGroupId")
    if store.get(target[0], str(merged[target[1]])) is None:
        raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [target[1]])
    user = store.get("User", str(merged["AssigneeId"]))
    if user is None:
        raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["AssigneeId"])
    if not user.get("IsActive"):
        raise RecordError("INACTIVE_OWNER_OR_USER", "operation performed with inactive user", ["AssigneeId"])
    _duplicate(store, "PermissionSetAssignment", rid,
               {target[1]: merged[target[1]], "AssigneeId": merged["AssigneeId"]}, "<unknown>")
