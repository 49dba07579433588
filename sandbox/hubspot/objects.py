"""HubSpot object endpoints: search, batch read/update, single records, v4 associations."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sandbox.context import SandboxContext
from sandbox.http import Request, Response
from sandbox.hubspot.api import error, state
from sandbox.hubspot.props import (
    CANONICAL,
    DEFAULT_PROPS,
    BadValue,
    Prop,
    build_props,
    canonical_id,
    hs_id,
    iso,
    parse_value,
    to_object,
)
from sandbox.hubspot.search import SearchError
from sandbox.hubspot.search import search as run_search

MAX_BATCH = 100
MAX_ASSOC_BATCH = 1000
OBJECT_LABEL = {"contacts": "CONTACT", "leads": "LEAD", "deals": "DEAL"}


def queue_id(ctx: SandboxContext) -> str | None:
    """The queue-like owner (unassigned leads): shown as no owner in HubSpot."""
    for u in ctx.store.all("User"):
        if u.get("UserType") == "Queue":
            return str(u["Id"])
    return None


def live(rec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record unless it is archived (deleted or merged away): then, as on HubSpot, None."""
    return None if rec is None or rec.get("IsDeleted") else rec


def archived(rec: dict[str, Any] | None) -> bool:
    """Deleted and not merged away: what ``?archived=true`` lists (merged-away records are gone)."""
    return rec is not None and bool(rec.get("IsDeleted")) and not rec.get("MasterRecordId")


def table(ctx: SandboxContext, t: str) -> dict[str, Prop]:
    return build_props(ctx.store, t, queue_id(ctx))


def _owners(ctx: SandboxContext) -> dict[str, str]:
    """Assignable HubSpot owner id -> canonical User Id (active users only)."""
    return {hs_id(u["Id"]): u["Id"] for u in ctx.store.all("User") if u.get("IsActive")}


def search(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    t = p["t"]
    store = ctx.store
    lag = ctx.faults.index_lag_seconds
    with store.lock:
        visible = store.clock.now() - timedelta(seconds=lag) if lag > 0 else None
        try:
            out = run_search(table(ctx, t), lambda: [r for r in store.all(CANONICAL[t]) if live(r)], body, DEFAULT_PROPS[t],
                             (t, store.version), state(ctx).search_cache, visible)
        except SearchError as exc:
            return error(ctx, 400, str(exc), "VALIDATION_ERROR")
    return Response.json(200, out)


def _inputs(ctx: SandboxContext, body: Any, limit: int) -> list[dict[str, Any]] | Response:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        return error(ctx, 400, 'The body must be {"inputs": [{"id": ...}, ...]}.', "VALIDATION_ERROR")
    if len(inputs) > limit:
        return error(ctx, 400, f"Batch input is limited to {limit} inputs; got {len(inputs)}.", "VALIDATION_ERROR",
                     context={"limit": [str(limit)]})
    return inputs


def _batch_response(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: datetime,
                    finished: datetime) -> Response:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso(started),
                            "completedAt": iso(finished)}
    if errors:
        body.update(numErrors=len(errors), errors=errors)
    return Response.json(207 if errors else 200, body)


def _err(category: str, message: str, context: dict[str, list[str]], details: list[dict[str, Any]] | None = None,
         sub: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"status": "error", "category": category, "message": message, "context": context,
                         "errors": details or [], "links": {}}
    if sub:
        e["subCategory"] = sub
    return e


def _not_found(t: str, ids: list[str]) -> dict[str, Any]:
    return _err("OBJECT_NOT_FOUND", f"Could not get some {OBJECT_LABEL[t]} objects, they may be deleted or not exist. "
                "Check that ids are valid.", {"ids": ids})


def batch_read(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    t = p["t"]
    inputs = _inputs(ctx, body, MAX_BATCH)
    if isinstance(inputs, Response):
        return inputs
    started = ctx.store.clock.now()
    tab = table(ctx, t)
    names = [n for n in (body.get("properties") or DEFAULT_PROPS[t]) if n in tab]
    id_prop = body.get("idProperty") or "hs_object_id"
    want_archived = (req.q("archived", "false") or "false").lower() == "true"

    def visible(rec: dict[str, Any] | None) -> dict[str, Any] | None:  # ?archived=true: only archived ones
        return (rec if archived(rec) else None) if want_archived else live(rec)

    results, missing = [], []
    with ctx.store.lock:
        by_key: dict[str, dict[str, Any]] = {}
        if id_prop != "hs_object_id":
            if id_prop not in tab:
                return error(ctx, 400, f"Property {id_prop} does not exist or is not a unique identifier.", "VALIDATION_ERROR")
            prop = tab[id_prop]
            by_key = {str(prop.value(r)).lower(): r for r in ctx.store.all(CANONICAL[t]) if visible(r) and prop.value(r)}
        for inp in inputs:
            key = str(inp.get("id", ""))
            if id_prop == "hs_object_id":
                cid = canonical_id(CANONICAL[t], key)
                rec = visible(ctx.store.get(CANONICAL[t], cid)) if cid else None
            else:
                rec = by_key.get(key.lower())
            if rec is None:
                missing.append(key)
            else:
                results.append(to_object(tab, rec, names))
    return _batch_response(results, [_not_found(t, missing)] if missing else [], started, ctx.store.clock.now())


def _options(ctx: SandboxContext, t: str) -> dict[str, set[str]]:
    """Created enumeration properties -> their option values (a value outside them is refused)."""
    return {name: {str(o.get("value")) for o in meta.get("options") or []}
            for (obj, name), meta in state(ctx).prop_meta.items() if obj == t and meta.get("options")}


def _validate(tab: dict[str, Prop], props: Any, owners: dict[str, str], queue: str | None,
              options: dict[str, set[str]] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """HubSpot property values -> canonical field values, or the reasons they are invalid."""
    if not isinstance(props, dict):
        return {}, [{"isValid": False, "message": "properties must be an object", "error": "INVALID_INPUT", "name": ""}]
    values: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for name, raw in props.items():
        prop = tab.get(name)
        if prop is None:
            problems.append({"isValid": False, "message": f'Property "{name}" does not exist', "error": "PROPERTY_DOESNT_EXIST", "name": name})
        elif prop.read_only or prop.field is None:
            problems.append({"isValid": False, "message": f'Property "{name}" is read-only', "error": "READ_ONLY_VALUE", "name": name})
        elif options and name in options and prop.type == "enumeration" and raw not in (None, "") \
                and str(raw) not in options[name]:
            problems.append({"isValid": False, "message": f"{raw} was not one of the allowed options: "
                             f"{', '.join(sorted(options[name]))}", "error": "INVALID_OPTION", "name": name})
        elif name == "hubspot_owner_id":
            if raw in (None, ""):
                values["OwnerId"] = queue
            elif str(raw) in owners:
                values["OwnerId"] = owners[str(raw)]
            else:
                problems.append({"isValid": False, "message": f"{raw} is not a valid owner id", "error": "INVALID_OWNER_ID", "name": name})
        else:
            try:
                values[prop.field] = parse_value(prop, raw)
            except BadValue as exc:
                problems.append({"isValid": False, "message": str(exc), "error": exc.error, "name": name})
    return values, problems


def _invalid(rid: str, problems: list[dict[str, Any]]) -> dict[str, Any]:
    details = [{"message": p["message"], "code": p["error"], "in": p["name"]} for p in problems]
    return _err("VALIDATION_ERROR", f"Property values were not valid: {json.dumps(problems)}",
                {"ids": [rid], "propertyName": [p["name"] for p in problems]}, details)


def batch_update(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    t = p["t"]
    inputs = _inputs(ctx, body, MAX_BATCH)
    if isinstance(inputs, Response):
        return inputs
    ids = [str(i.get("id", "")) for i in inputs]
    if len(set(ids)) != len(ids):
        return error(ctx, 400, "Duplicate IDs found in batch input: each record may appear once.", "VALIDATION_ERROR")
    started = ctx.store.clock.now()
    tab, owners, queue, options = table(ctx, t), _owners(ctx), queue_id(ctx), _options(ctx, t)
    results, errors, missing = [], [], []
    with ctx.store.lock:
        for rid, inp in zip(ids, inputs, strict=True):
            cid = canonical_id(CANONICAL[t], rid)
            if cid is None or live(ctx.store.get(CANONICAL[t], cid)) is None:
                missing.append(rid)
                continue
            values, problems = _validate(tab, inp.get("properties"), owners, queue, options)
            if problems:
                errors.append(_invalid(rid, problems))
                continue
            rec = ctx.store.write(CANONICAL[t], cid, values)
            results.append(to_object(tab, rec, [*inp["properties"], *DEFAULT_PROPS[t]]))
    if missing:
        errors.insert(0, _not_found(t, missing))
    return _batch_response(results, errors, started, ctx.store.clock.now())


def list_page(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    t = p["t"]
    tab = table(ctx, t)
    try:
        limit = min(int(req.q("limit", "10") or 10), 100)
        after = int(req.q("after", "0") or 0)
    except ValueError:
        return error(ctx, 400, "limit and after must be integers.", "VALIDATION_ERROR")
    names = [n for v in req.query.get("properties", []) for n in v.split(",") if n in tab] or list(DEFAULT_PROPS[t])
    want_archived = (req.q("archived", "false") or "false").lower() == "true"
    recs = sorted((r for r in ctx.store.all(CANONICAL[t]) if (archived(r) if want_archived else live(r))),
                  key=lambda r: r["Id"])
    page = [to_object(tab, r, names) for r in recs[after:after + limit]]
    out: dict[str, Any] = {"results": page}
    if after + limit < len(recs):
        out["paging"] = {"next": {"after": str(after + limit), "link": f"?after={after + limit}"}}
    return Response.json(200, out)


def get_one(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    t = p["t"]
    tab = table(ctx, t)
    cid = canonical_id(CANONICAL[t], p["id"])
    rec = live(ctx.store.get(CANONICAL[t], cid)) if cid else None
    if rec is None:
        return error(ctx, 404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                     context={"id": [p["id"]]})
    names = [n for v in req.query.get("properties", []) for n in v.split(",") if n in tab] or list(DEFAULT_PROPS[t])
    return Response.json(200, to_object(tab, rec, names))


def update_one(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    t = p["t"]
    tab = table(ctx, t)
    cid = canonical_id(CANONICAL[t], p["id"])
    with ctx.store.lock:
        if cid is None or live(ctx.store.get(CANONICAL[t], cid)) is None:
            return error(ctx, 404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        props = body.get("properties") if isinstance(body, dict) else None
        values, problems = _validate(tab, props, _owners(ctx), queue_id(ctx), _options(ctx, p["t"]))
        if problems:
            return error(ctx, 400, f"Property values were not valid: {json.dumps(problems)}", "VALIDATION_ERROR")
        rec = ctx.store.write(CANONICAL[t], cid, values)
        return Response.json(200, to_object(tab, rec, [*(props or {}), *DEFAULT_PROPS[t]]))


ASSOC_TYPE = {("deals", "contacts"): 3, ("contacts", "deals"): 4}


def associations(ctx: SandboxContext, req: Request, p: dict[str, str], body: Any) -> Response:
    src, dst = p["t"], p["to"]
    if (src, dst) not in ASSOC_TYPE:
        return error(ctx, 400, f"Associations from {src} to {dst} are not available in the sandbox.", "VALIDATION_ERROR")
    inputs = _inputs(ctx, body, MAX_ASSOC_BATCH)
    if isinstance(inputs, Response):
        return inputs
    started = ctx.store.clock.now()
    kind = {"category": "HUBSPOT_DEFINED", "typeId": ASSOC_TYPE[(src, dst)], "label": None}
    results, errors = [], []
    with ctx.store.lock:
        for inp in inputs:
            hid = str(inp.get("id", ""))
            cid = canonical_id(CANONICAL[src], hid)
            rec = ctx.store.get(CANONICAL[src], cid) if cid else None
            target = None
            if rec is not None:
                target = ctx.store.opportunity_lead.get(rec["Id"]) if src == "deals" else rec.get("ConvertedOpportunityId")
            if target is None:
                errors.append(_err("OBJECT_NOT_FOUND", f"No {dst} are associated with {src[:-1]} {hid}.", {"fromObjectId": [hid]},
                                   sub="crm.associations.NO_ASSOCIATIONS_FOUND"))
                continue
            results.append({"from": {"id": hid}, "to": [{"toObjectId": int(hs_id(target)), "associationTypes": [kind]}]})
    return _batch_response(results, errors, started, ctx.store.clock.now())
