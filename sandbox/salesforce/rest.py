"""Salesforce REST resources under ``/services/data/v{ver}/`` (auth and limits are
``salesforce.handle``'s job): ``query/`` and ``queryAll/`` with cursors, sObject
Collections ``PATCH composite/sobjects``, ``sobjects/`` describes, single-record
``GET``/``PATCH sobjects/{type}/{id}``, and ``limits/``; the setup objects (permission sets,
their field permissions and assignments) are also created (``POST sobjects/{type}/``) and
deleted (``DELETE sobjects/{type}/{id}``). Every call sees the schema through the caller's
field-level security (``access``).
"""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from typing import Any

from sandbox.context import SandboxContext
from sandbox.http import Request, Response
from sandbox.salesforce import soql
from sandbox.salesforce.access import FieldAccess, access_for, check_setup_write
from sandbox.salesforce.records import RecordError, aggregate_record, find_id, prepare, to_record
from sandbox.salesforce.values import READ_ONLY, category
from sandbox.store import ID_PREFIX, OBJECTS, SETUP_OBJECTS

MAX_COLLECTION = 200  # records per sObject Collections request
MIN_BATCH, MAX_BATCH = 200, 2000  # Sforce-Query-Options batchSize bounds (default: the max)
MAX_CURSORS = 20  # open query cursors kept (oldest dropped), like a real org's per-user cap
_CURSOR = re.compile(r"^(query|queryAll)/(01g[0-9A-Za-z]{15})-(\d+)$")
_cursor_ids = itertools.count(1)
LOCK_MESSAGE = "unable to obtain exclusive access to this record"


def _err(status: int, code: str, message: str) -> Response:
    return Response.json(status, [{"message": message, "errorCode": code}])


def handle(ctx: SandboxContext, req: Request, version: str, rest: str, remaining: int) -> Response:
    """Route one authenticated REST call; ``rest`` is the path after ``v{ver}/``."""
    key = rest.rstrip("/")
    parts = key.split("/")
    access = access_for(ctx, req.bearer)
    if key in ("query", "queryAll") and req.method == "GET":
        return _query(ctx, req, version, access, include_deleted=key == "queryAll")
    cursor = _CURSOR.match(key)
    if cursor is not None and req.method == "GET":
        return _more(ctx, req, version, cursor.group(1), cursor.group(2), int(cursor.group(3)))
    if key == "composite/sobjects":
        if req.method != "PATCH":
            return _err(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed. Allowed are PATCH")
        return _collection_update(ctx, req, access)
    if key == "limits" and req.method == "GET":
        budget = ctx.faults.sf_daily_budget
        return Response.json(200, {"DailyApiRequests": {"Max": budget, "Remaining": max(remaining, 0)},
                                   "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                                   "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000}})
    if key == "sobjects" and req.method == "GET":
        return Response.json(200, {"encoding": "UTF-8", "maxBatchSize": MAX_COLLECTION,
                                   "sobjects": [_object_info(o, version) for o in OBJECTS]})
    if len(parts) >= 2 and parts[0] == "sobjects":
        obj = next((o for o in OBJECTS if o.lower() == parts[1].lower()), None)
        if obj is None:
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        if len(parts) == 3 and parts[2] == "describe" and req.method == "GET":
            return Response.json(200, describe(ctx, obj, version, access))
        if len(parts) == 2 and req.method == "POST" and obj in SETUP_OBJECTS:
            return _create(ctx, req, obj, access)
        if len(parts) == 3 and req.method == "DELETE" and obj in SETUP_OBJECTS:
            return _delete(ctx, obj, parts[2], access)
        if len(parts) == 3 and req.method in ("GET", "PATCH"):
            return _record(ctx, req, version, obj, parts[2], access)
    return _err(404, "NOT_FOUND", "The requested resource does not exist")


# ---------------------------------------------------------------------- query
def _batch_size(req: Request, default: int = MAX_BATCH) -> int:
    m = re.search(r"batchSize\s*=\s*(\d+)", req.headers.get("sforce-query-options", ""))
    return default if m is None else min(max(int(m.group(1)), MIN_BATCH), MAX_BATCH)


def _query(ctx: SandboxContext, req: Request, version: str, access: FieldAccess, include_deleted: bool) -> Response:
    text = req.q("q")
    if not text:
        return _err(400, "MALFORMED_QUERY", "A query string has to be specified")
    store = ctx.store
    try:
        q = soql.parse(text, access.fields, store.clock.now())
    except soql.SoqlError as exc:
        return _err(400, exc.code, exc.message)
    with store.lock:  # evaluate and snapshot in one go, as a cursor sees one moment
        rows = soql.execute(q, store.records[q.obj].values(), include_deleted)
        if q.count_only:
            return Response.json(200, {"totalSize": len(rows), "done": True, "records": []})
        if q.aggregate:
            records = [aggregate_record(r, q, version) for r in rows]
        else:
            records = [to_record(r, q.obj, q.fields, version) for r in rows]
    batch = _batch_size(req)
    endpoint = "queryAll" if include_deleted else "query"
    if len(records) <= batch:
        return Response.json(200, {"totalSize": len(records), "done": True, "records": records})
    cursor = f"01g{next(_cursor_ids):012d}AAA"
    with ctx.lock:
        cursors: OrderedDict[str, list[dict[str, Any]]] = ctx.state.setdefault("sf_cursors", OrderedDict())
        cursors[cursor] = records
        while len(cursors) > MAX_CURSORS:
            cursors.popitem(last=False)
    return _page(ctx, version, endpoint, cursor, records, 0, batch)


def _more(ctx: SandboxContext, req: Request, version: str, endpoint: str, cursor: str, offset: int) -> Response:
    with ctx.lock:
        records = ctx.state.get("sf_cursors", {}).get(cursor)
    if records is None or offset > len(records):
        return _err(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _page(ctx, version, endpoint, cursor, records, offset, _batch_size(req))


def _page(ctx: SandboxContext, version: str, endpoint: str, cursor: str, records: list[dict[str, Any]],
          offset: int, batch: int) -> Response:
    end = offset + batch
    body: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records)}
    if end < len(records):
        body["nextRecordsUrl"] = f"/services/data/v{version}/{endpoint}/{cursor}-{end}"  # a PATH, not a URL
    else:
        with ctx.lock:  # the last page closes the cursor
            ctx.state.get("sf_cursors", {}).pop(cursor, None)
    body["records"] = records[offset:end]
    return Response.json(200, body)


# ---------------------------------------------------------------------- writes
def _collection_update(ctx: SandboxContext, req: Request, access: FieldAccess) -> Response:
    try:
        body = req.json()
    except ValueError as exc:
        return _err(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}")
    items = body.get("records") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return _err(400, "JSON_PARSER_ERROR", 'The request body must be {"allOrNone": bool, "records": [{...}]}')
    if len(items) > MAX_COLLECTION:
        return _err(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
    all_or_none = bool(body.get("allOrNone", False))
    with ctx.lock:  # one draw per record, in request order: seeded and reproducible
        locked = [ctx.faults.p_lock_row > 0 and ctx.rng.random() < ctx.faults.p_lock_row for _ in items]
    store = ctx.store
    results: list[dict[str, Any] | None] = [None] * len(items)
    ready: list[tuple[int, str, str, dict[str, Any]]] = []
    with store.lock:
        for i, item in enumerate(items):
            try:
                obj = _type_of(item)
                rid = find_id(store, obj, item.get("Id"))
                clean = prepare(store, obj, {k: v for k, v in item.items() if k not in ("attributes", "Id")},
                                access=access)
                if obj in SETUP_OBJECTS:
                    check_setup_write(store, access.uid, obj, rid, clean)
                if locked[i]:
                    raise RecordError("UNABLE_TO_LOCK_ROW", LOCK_MESSAGE, [])
                ready.append((i, obj, rid, clean))
            except RecordError as exc:
                results[i] = {"id": None, "success": False, "errors": [exc.save_error()]}
        if all_or_none and len(ready) < len(items):
            rolled = RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records "
                                 "were valid and the request was using AllOrNone header", [])
            for i, _, _, _ in ready:
                results[i] = {"id": None, "success": False, "errors": [rolled.save_error()]}
        else:
            for i, obj, rid, clean in ready:
                store.write(obj, rid, clean)
                results[i] = {"id": rid, "success": True, "errors": []}
    return Response.json(200, results)


def _type_of(item: dict[str, Any]) -> str:
    attrs = item.get("attributes")
    name = attrs.get("type") if isinstance(attrs, dict) else None
    if not name:
        raise RecordError("INVALID_TYPE", "Must specify a type in the attributes property of each record", [])
    obj = next((o for o in OBJECTS if o.lower() == str(name).lower()), None)
    if obj is None:
        raise RecordError("INVALID_TYPE", f"sObject type '{name}' is not supported.", [])
    return obj


def _record(ctx: SandboxContext, req: Request, version: str, obj: str, rid: str, access: FieldAccess) -> Response:
    store = ctx.store
    with store.lock:
        try:
            found = find_id(store, obj, rid)
        except RecordError:
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        if req.method == "GET":
            wanted = [f for f in (req.q("fields") or "").split(",") if f.strip()]
            visible = access.fields(obj)
            lower = {k.lower(): k for k in visible}
            try:
                fields = [lower[f.strip().lower()] for f in wanted] or list(visible)
            except KeyError as exc:
                return _err(400, "INVALID_FIELD", f"No such column '{exc.args[0]}' on sobject of type {obj}")
            return Response.json(200, to_record(store.records[obj][found], obj, fields, version))
        try:
            body = req.json()
        except ValueError as exc:
            return _err(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}")
        if not isinstance(body, dict):
            return _err(400, "JSON_PARSER_ERROR", "The request body must be a JSON object of field values")
        try:
            clean = prepare(store, obj, {k: v for k, v in body.items() if k != "attributes"}, access=access)
            if obj in SETUP_OBJECTS:
                check_setup_write(store, access.uid, obj, found, clean)
        except RecordError as exc:
            return Response.json(400, [exc.rest_error()])
        store.write(obj, found, clean)
    return Response(204)


def _create(ctx: SandboxContext, req: Request, obj: str, access: FieldAccess) -> Response:
    """``POST sobjects/{type}/`` for a setup object: 201 ``{"id", "success", "errors"}``."""
    try:
        body = req.json()
    except ValueError as exc:
        return _err(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}")
    if not isinstance(body, dict):
        return _err(400, "JSON_PARSER_ERROR", "The request body must be a JSON object of field values")
    store = ctx.store
    with store.lock:
        try:
            clean = prepare(store, obj, {k: v for k, v in body.items() if k not in ("attributes", "Id")},
                            access=access)
            check_setup_write(store, access.uid, obj, None, clean)
        except RecordError as exc:
            return Response.json(400, [exc.rest_error()])
        rid = store.insert(obj, clean)
    return Response.json(201, {"id": rid, "success": True, "errors": []})


def _delete(ctx: SandboxContext, obj: str, rid: str, access: FieldAccess) -> Response:
    store = ctx.store
    with store.lock:
        try:
            found = find_id(store, obj, rid)
            check_setup_write(store, access.uid, obj, found, {})
        except RecordError as exc:
            status = 404 if exc.code in ("INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID") else 400
            if status == 404:
                return _err(404, "NOT_FOUND", "The requested resource does not exist")
            return Response.json(status, [exc.rest_error()])
        store.purge(obj, found)
    return Response(204)


# ---------------------------------------------------------------------- describe
def _urls(obj: str, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def _object_info(obj: str, version: str) -> dict[str, Any]:
    return {"name": obj, "label": obj, "labelPlural": obj + "s", "keyPrefix": ID_PREFIX[obj], "custom": False,
            "queryable": True, "updateable": True, "createable": True, "urls": _urls(obj, version)}


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).replace("_", " ").strip()


def describe(ctx: SandboxContext, obj: str, version: str, access: FieldAccess | None = None) -> dict[str, Any]:
    """``sobjects/{obj}/describe``: the object and every field the caller may read (custom fields
    included once granted); ``updateable`` is false for a field the caller may read but not edit."""
    labels: dict[str, str] = ctx.state.get("sf_labels", {}).get(obj, {})
    fields = []
    visible = access.fields(obj) if access is not None else ctx.store.fields(obj)
    for name, ftype in visible.items():
        editable = name not in READ_ONLY and (access is None or access.editable(obj, name))
        kind = category(ftype)
        fields.append({
            "name": name, "label": labels.get(name, _label(name)), "type": ftype, "custom": name.endswith("__c"),
            "nillable": name != "Id" and kind != "boolean", "updateable": editable,
            "createable": editable, "filterable": True, "sortable": ftype != "textarea",
            "length": 255 if kind == "text" else 18 if kind == "id" else 0,
            "referenceTo": ["User"] if name == "OwnerId" else ["Opportunity"] if name == "ConvertedOpportunityId" else [],
            "picklistValues": [],
        })
    return {**_object_info(obj, version), "fields": fields}
