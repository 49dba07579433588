"""HubSpot schema endpoints: owners (with paging), property groups and properties."""

from __future__ import annotations

import re
from typing import Any

from sandbox.context import SandboxContext
from sandbox.http import Request, Response
from sandbox.hubspot.api import HubSpotState, error, state
from sandbox.hubspot.objects import table
from sandbox.hubspot.props import CANONICAL, HS_TYPE_TO_SF, Prop, hs_id, iso

DEFAULT_GROUPS = {"contacts": ("contactinformation", "Contact information"),
                  "leads": ("leadinformation", "Lead information"),
                  "deals": ("dealinformation", "Deal information")}
FIELD_TYPES = {"string": "text", "number": "number", "date": "date", "datetime": "date",
               "enumeration": "select", "bool": "booleancheckbox"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


# ------------------------------------------------------------------ owners
def _owner_json(u: dict[str, Any]) -> dict[str, Any]:
    oid = hs_id(u["Id"])
    return {"id": oid, "email": u.get("Email"), "firstName": u.get("FirstName"), "lastName": u.get("LastName"),
            "userId": 9_000_000 + int(oid), "userIdIncludingInactive": 9_000_000 + int(oid),
            "type": "QUEUE" if u.get("UserType") == "Queue" else "PERSON",
            "createdAt": iso(u["CreatedDate"]), "updatedAt": iso(u["SystemModstamp"]),
            "archived": not u.get("IsActive"), "teams": []}


def owners(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    try:
        limit = int(req.q("limit", "100") or 100)
        after = int(req.q("after", "0") or 0)
    except ValueError:
        return error(ctx, 400, "limit and after must be integers.", "VALIDATION_ERROR")
    if not 1 <= limit <= 500:
        return error(ctx, 400, f"limit must be between 1 and 500, got {limit}.", "VALIDATION_ERROR")
    archived = (req.q("archived", "false") or "false").lower() == "true"
    email = (req.q("email") or "").lower()
    users = sorted(ctx.store.all("User"), key=lambda u: u["Id"])
    rows = [u for u in users if (not u.get("IsActive")) == archived and (not email or (u.get("Email") or "").lower() == email)]
    out: dict[str, Any] = {"results": [_owner_json(u) for u in rows[after:after + limit]]}
    if after + limit < len(rows):
        out["paging"] = {"next": {"after": str(after + limit), "link": f"?after={after + limit}"}}
    return Response.json(200, out)


def owner(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    archived = (req.q("archived", "false") or "false").lower() == "true"  # deactivated owners only then
    for u in ctx.store.all("User"):
        if hs_id(u["Id"]) == p["id"] and (u.get("IsActive") or archived):
            return Response.json(200, _owner_json(u))
    return error(ctx, 404, f"Owner {p['id']} was not found.", "OBJECT_NOT_FOUND")


# ------------------------------------------------------------------ groups
def _groups(st: HubSpotState, t: str) -> dict[str, dict[str, Any]]:
    if t not in st.groups:
        name, label = DEFAULT_GROUPS[t]
        st.groups[t] = {name: {"name": name, "label": label, "displayOrder": -1, "archived": False}}
    return st.groups[t]


def list_groups(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    with state(ctx).lock:
        return Response.json(200, {"results": list(_groups(state(ctx), p["t"]).values())})


def get_group(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    with state(ctx).lock:
        g = _groups(state(ctx), p["t"]).get(p["name"])
    if g is None:
        return error(ctx, 404, f"Unable to find property group {p['name']}.", "OBJECT_NOT_FOUND")
    return Response.json(200, g)


def create_group(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
        return error(ctx, 400, 'A property group needs "name" and "label".', "VALIDATION_ERROR")
    st = state(ctx)
    with st.lock:
        groups = _groups(st, p["t"])
        name = str(body["name"])
        if name in groups:
            return error(ctx, 409, f"A property group named '{name}' already exists.", "OBJECT_ALREADY_EXISTS",
                         subCategory="PropertyGroupError.GROUP_ALREADY_EXISTS")
        g = {"name": name, "label": str(body["label"]), "displayOrder": int(body.get("displayOrder", -1)), "archived": False}
        groups[name] = g
    return Response.json(201, g)


# ------------------------------------------------------------------ properties
def _prop_json(ctx: SandboxContext, t: str, prop: Prop) -> dict[str, Any]:
    meta = state(ctx).prop_meta.get((t, prop.name), {})
    created = meta.get("createdAt", "2020-01-01T00:00:00.000Z")
    return {
        "name": prop.name, "label": meta.get("label", prop.name.replace("_", " ").title()), "type": prop.type,
        "fieldType": meta.get("fieldType", FIELD_TYPES[prop.type]), "description": meta.get("description", ""),
        "groupName": meta.get("groupName", DEFAULT_GROUPS[t][0]), "options": meta.get("options", []),
        "displayOrder": -1, "calculated": False, "externalOptions": False, "hasUniqueValue": False, "hidden": False,
        "hubspotDefined": not meta, "formField": bool(meta.get("formField", False)),
        "modificationMetadata": {"archivable": bool(meta), "readOnlyDefinition": not meta, "readOnlyValue": prop.read_only},
        "createdAt": created, "updatedAt": created, "archived": False,
    }


def list_props(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    return Response.json(200, {"results": [_prop_json(ctx, p["t"], pr) for pr in table(ctx, p["t"]).values()]})


def get_prop(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    prop = table(ctx, p["t"]).get(p["name"])
    if prop is None:
        return error(ctx, 404, f"Property {p['name']} does not exist", "OBJECT_NOT_FOUND")
    return Response.json(200, _prop_json(ctx, p["t"], prop))


def create_prop(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    t = p["t"]
    if not isinstance(body, dict):
        return error(ctx, 400, "The body must be a JSON object.", "VALIDATION_ERROR")
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        return error(ctx, 400, f"Missing required fields: {', '.join(missing)}.", "VALIDATION_ERROR")
    name, ptype = str(body["name"]), str(body["type"])
    if not NAME_RE.match(name):
        return error(ctx, 400, f"Property name {name!r} is invalid: use lower-case letters, digits and underscores, "
                     "starting with a letter.", "VALIDATION_ERROR")
    if ptype not in HS_TYPE_TO_SF:
        return error(ctx, 400, f"Unknown property type {ptype!r}; use one of {', '.join(HS_TYPE_TO_SF)}.", "VALIDATION_ERROR")
    st = state(ctx)
    with st.lock, ctx.store.lock:
        if body["groupName"] not in _groups(st, t):
            return error(ctx, 400, f"Property group {body['groupName']} does not exist; create it first.", "VALIDATION_ERROR")
        if name in table(ctx, t) or not ctx.store.add_field(CANONICAL[t], name, HS_TYPE_TO_SF[ptype]):
            return error(ctx, 409, f"A property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS",
                         subCategory="PropertyError.PROPERTY_ALREADY_EXISTS")
        st.prop_meta[(t, name)] = {
            "label": str(body["label"]), "fieldType": str(body["fieldType"]), "groupName": str(body["groupName"]),
            "description": str(body.get("description") or ""), "options": list(body.get("options") or []),
            "formField": bool(body.get("formField", False)), "createdAt": iso(ctx.store.clock.now()),
        }
        prop = table(ctx, t)[name]
    return Response.json(201, _prop_json(ctx, t, prop))


UPDATABLE = ("label", "description", "groupName", "options", "displayOrder", "formField")


def update_prop(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    """``PATCH /crm/v3/properties/{type}/{name}``: a created property's label, description, group
    or options (its name and type stay); a HubSpot-defined property's definition is read-only."""
    t, name = p["t"], p["name"]
    if not isinstance(body, dict):
        return error(ctx, 400, "The body must be a JSON object.", "VALIDATION_ERROR")
    unknown = sorted(set(body) - set(UPDATABLE) - {"type", "fieldType"})
    if unknown:
        return error(ctx, 400, f"Unknown fields: {', '.join(unknown)}.", "VALIDATION_ERROR")
    st = state(ctx)
    with st.lock:
        prop = table(ctx, t).get(name)
        if prop is None:
            return error(ctx, 404, f"Property {name} does not exist", "OBJECT_NOT_FOUND")
        meta = st.prop_meta.get((t, name))
        if meta is None:
            return error(ctx, 400, f"Property {name} is a HubSpot default property; its definition is read-only.",
                         "VALIDATION_ERROR")
        if "type" in body and body["type"] != prop.type:
            return error(ctx, 400, f"Changing the type of {name} is not supported here.", "VALIDATION_ERROR")
        if "groupName" in body and body["groupName"] not in _groups(st, t):
            return error(ctx, 400, f"Property group {body['groupName']} does not exist; create it first.",
                         "VALIDATION_ERROR")
        for key in UPDATABLE:
            if key in body:
                meta[key] = list(body[key] or []) if key == "options" else body[key]
    return Response.json(200, _prop_json(ctx, t, prop))
