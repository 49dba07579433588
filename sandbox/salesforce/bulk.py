"""Bulk API 2.0 under ``/services/data/v{ver}/jobs/``: ingest ``update`` jobs and query jobs.

Ingest: ``POST ingest`` -> ``Open``; ``PUT ingest/{id}/batches`` (CSV) -> 201;
``PATCH ingest/{id} {"state": "UploadComplete"}`` applies the rows; the job then reports
``InProgress`` to the first poll and ``JobComplete`` (or ``Failed`` with
``errorMessage``) after; ``successfulResults`` / ``failedResults`` /
``unprocessedRecords`` give CSV. Columns are matched by name (simple-salesforce builds
the header from a ``set``, so order is arbitrary); an empty cell leaves a field
unchanged and ``#N/A`` sets it to null, as in the real API.

Query: ``POST query {"operation": "query", "query": …}`` fixes which records match (their
ids, in order: a million matches cost a million ids, not a million CSV rows);
``GET query/{id}/results?maxRecords=N&locator=L`` renders one page of them as CSV with the
required ``Sforce-NumberOfRecords`` and ``Sforce-Locator`` (the string ``null`` on the last
page). Unlike the real API, a page shows its records' values when it is read, not when the
job ran (a record written in between shows the write). As on the real API, aggregate
functions are refused in a Bulk query, ``maxRecords`` must be a positive integer, and a
locator the job did not hand out is ``INVALIDLOCATOR``.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox.context import SandboxContext
from sandbox.http import Request, Response
from sandbox.salesforce import soql
from sandbox.salesforce.access import FieldAccess, access_for
from sandbox.salesforce.records import RecordError, find_id, prepare
from sandbox.salesforce.values import format_datetime, to_csv
from sandbox.store import OBJECTS

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_job_ids = itertools.count(1)
# Results per page when the client names no maxRecords (the real API picks its own, up to 50,000
# rows or 1 GB a page; simple-salesforce always names 50,000).
DEFAULT_PAGE = 50_000


@dataclass
class Job:
    """One Bulk API 2.0 job and what it produced."""

    id: str
    kind: str  # "ingest" | "query"
    operation: str
    obj: str
    created: str
    version: str
    delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = "Open"
    final_state: str = "JobComplete"  # what the job reports once its InProgress poll has passed
    error_message: str = ""
    data: list[bytes] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    success: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # a query job's matches, in result order
    processed: int = 0
    access: FieldAccess | None = None  # the creator's field-level security (their job sees what they see)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.obj, "createdById": "005000000000001AAA",
            "createdDate": self.created, "systemModstamp": self.created, "state": self.state,
            "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(self.version),
            "lineEnding": self.line_ending, "columnDelimiter": self.delimiter,
        }
        if self.kind == "ingest":
            out["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
        if self.state in ("JobComplete", "Failed", "InProgress"):
            done = self.state != "InProgress"
            out.update({"jobType": "V2Ingest" if self.kind == "ingest" else "V2Query",
                        "numberRecordsProcessed": self.processed if done else 0, "retries": 0,
                        "totalProcessingTime": 0})
            if self.kind == "ingest":
                out["numberRecordsFailed"] = len(self.failed) if done else 0
        if self.state == "Failed":
            out["errorMessage"] = self.error_message
        return out


def _err(status: int, code: str, message: str) -> Response:
    return Response.json(status, [{"message": message, "errorCode": code}])


def handle(ctx: SandboxContext, req: Request, version: str, rest: str) -> Response:
    """Route one Bulk 2.0 call; ``rest`` is the path after ``jobs/``."""
    parts = rest.rstrip("/").split("/")
    kind = parts[0]
    if kind not in ("ingest", "query"):
        return _err(404, "NOT_FOUND", "The requested resource does not exist")
    if len(parts) == 1:
        if req.method != "POST":
            return _err(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed. Allowed are POST")
        return _create(ctx, req, version, kind)
    with ctx.lock:
        jobs: dict[str, Job] = ctx.state.setdefault("sf_bulk_jobs", {})
        job = jobs.get(parts[1])
    if job is None or job.kind != kind:
        return _err(404, "NOT_FOUND", f"The requested resource does not exist: job {parts[1]}")
    tail = parts[2] if len(parts) > 2 else ""
    with job.lock:  # one job's state machine moves one request at a time
        if tail == "" and req.method == "GET":
            return Response.json(200, _poll(job))
        if tail == "" and req.method == "PATCH":
            return _set_state(ctx, req, job)
        if tail == "" and req.method == "DELETE":
            with ctx.lock:
                jobs.pop(job.id, None)
            return Response(204)
        if kind == "ingest" and tail == "batches" and req.method == "PUT":
            if job.state != "Open":
                return _err(409, "INVALIDJOBSTATE", f"Unable to upload data: job {job.id} is {job.state}, not Open")
            job.data.append(req.body)
            return Response(201)
        if kind == "ingest" and tail in ("successfulResults", "failedResults", "unprocessedRecords"):
            return _ingest_results(job, tail)
        if kind == "query" and tail == "results" and req.method == "GET":
            return _query_results(ctx, job, req)
    return _err(404, "NOT_FOUND", "The requested resource does not exist")


def _create(ctx: SandboxContext, req: Request, version: str, kind: str) -> Response:
    try:
        body = req.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _err(400, "JSON_PARSER_ERROR", "The job definition must be a JSON object")
    created = format_datetime(ctx.store.clock.now())
    job_id = f"750{next(_job_ids):012d}AAA"
    access = access_for(ctx, req.bearer)
    delimiter, line_ending = str(body.get("columnDelimiter", "COMMA")), str(body.get("lineEnding", "LF"))
    if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
        return _err(400, "INVALIDJOB", f"Unsupported columnDelimiter {delimiter!r} or lineEnding {line_ending!r}")
    if kind == "query":
        op = body.get("operation")
        if op not in ("query", "queryAll"):
            return _err(400, "INVALIDJOB", f"Query jobs take operation 'query' or 'queryAll', not {op!r}")
        try:
            q = soql.parse(str(body.get("query") or ""), access.fields, ctx.store.clock.now())
        except soql.SoqlError as exc:
            return _err(400, exc.code, exc.message)
        if q.aggregate or q.count_only:
            return _err(400, "INVALIDJOB", "Aggregate functions and COUNT() are not supported in a Bulk API 2.0 query")
        job = Job(job_id, "query", op, q.obj, created, version, delimiter, line_ending, state="UploadComplete")
        with ctx.store.lock:
            job.ids = [r["Id"] for r in soql.execute(q, ctx.store.records[q.obj].values(),
                                                      include_deleted=op == "queryAll")]
            job.header = list(q.fields)
        job.processed = len(job.ids)
    else:
        obj = next((o for o in OBJECTS if o.lower() == str(body.get("object", "")).lower()), None)
        if obj is None:
            return _err(400, "INVALIDENTITY", f"Entity '{body.get('object')}' is not supported by the Bulk API.")
        if body.get("operation") != "update":
            return _err(400, "INVALIDJOB", f"The sandbox runs ingest operation 'update' only, not {body.get('operation')!r}")
        if body.get("contentType", "CSV") != "CSV":
            return _err(400, "INVALIDJOB", "contentType must be CSV")
        job = Job(job_id, "ingest", "update", obj, created, version, delimiter, line_ending, access=access)
    with ctx.lock:
        ctx.state.setdefault("sf_bulk_jobs", {})[job_id] = job
    return Response.json(200, job.info())


def _poll(job: Job) -> dict[str, Any]:
    """Real jobs take a while: the first poll after upload sees ``InProgress``."""
    if job.state == "UploadComplete":
        job.state = "InProgress"
    elif job.state == "InProgress":
        job.state = job.final_state
    return job.info()


def _set_state(ctx: SandboxContext, req: Request, job: Job) -> Response:
    try:
        wanted = (req.json() or {}).get("state")
    except (ValueError, AttributeError):
        wanted = None
    if wanted == "Aborted" and job.state in ("Open", "UploadComplete", "InProgress"):
        job.state = "Aborted"
        return Response.json(200, job.info())
    if wanted == "UploadComplete" and job.kind == "ingest" and job.state == "Open":
        job.state = "UploadComplete"
        _apply(ctx, job)
        return Response.json(200, job.info())
    return _err(400, "INVALIDJOBSTATE", f"Cannot change job {job.id} from {job.state} to {wanted!r}")


def _apply(ctx: SandboxContext, job: Job) -> None:
    """Parse the uploaded CSV and write each row, recording per-row results."""
    text = b"".join(job.data).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter]))
    if not rows:
        job.final_state, job.error_message = "Failed", "InvalidBatch : Failed to parse CSV. Found no header row"
        return
    header, data = rows[0], [r for r in rows[1:] if r]
    job.header = header
    store = ctx.store
    known = {k.lower() for k in (job.access.fields(job.obj) if job.access else store.fields(job.obj))}
    unknown = [h for h in header if h.lower() not in known]
    if unknown or "id" not in {h.lower() for h in header}:
        job.final_state = "Failed"
        job.error_message = (f"InvalidBatch : Field name not found : {unknown[0]}" if unknown
                             else "InvalidBatch : Field name not provided: Id")
        job.unprocessed = data
        return
    p = ctx.faults.p_lock_row
    with ctx.lock:  # seeded draws, one per row in file order
        locked = [p > 0 and ctx.rng.random() < p for _ in data]
    with store.lock:
        for row, lock in zip(data, locked, strict=True):
            cells = dict(zip(header, row, strict=False))
            rid_raw = next((v for k, v in cells.items() if k.lower() == "id"), "")
            values = {k: (None if v == "#N/A" else v) for k, v in cells.items() if k.lower() != "id" and v != ""}
            try:
                rid = find_id(store, job.obj, rid_raw)
                clean = prepare(store, job.obj, values, access=job.access)
                if lock:
                    raise RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])
                store.write(job.obj, rid, clean)
                job.success.append([rid, "false", *row])
            except RecordError as exc:
                job.failed.append(["", f"{exc.code}:{exc.message}:{','.join(exc.fields) or '--'}", *row])
    job.processed = len(data)


def _csv(header: list[str], rows: list[list[str]], job: Job) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=DELIMITERS[job.delimiter], lineterminator=LINE_ENDINGS[job.line_ending],
                        quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _ingest_results(job: Job, which: str) -> Response:
    if which == "successfulResults":
        body = _csv(["sf__Id", "sf__Created", *job.header], job.success, job)
    elif which == "failedResults":
        body = _csv(["sf__Id", "sf__Error", *job.header], job.failed, job)
    else:
        body = _csv(job.header, job.unprocessed, job)
    return Response.text(200, body, "text/csv")


def _query_results(ctx: SandboxContext, job: Job, req: Request) -> Response:
    if job.state != "JobComplete":
        return _err(400, "INVALIDJOBSTATE", f"Job {job.id} is {job.state}: results are ready once it is JobComplete")
    locator = req.q("locator") or ""
    try:
        offset = int(base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode()) if locator else 0
    except ValueError:
        offset = -1
    if offset < 0 or offset > len(job.ids) or (locator and offset == 0):
        return _err(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
    raw = req.q("maxRecords")
    try:
        size = int(raw) if raw is not None else DEFAULT_PAGE
    except ValueError:
        size = 0
    if size <= 0:
        return _err(400, "INVALIDPARAMETER", f"maxRecords must be a positive integer, not {raw!r}")
    ids = job.ids[offset:offset + size]
    with ctx.store.lock:
        records = ctx.store.records[job.obj]
        page = [[to_csv(rec.get(f)) for f in job.header] for rec in (records.get(rid) for rid in ids)
                if rec is not None]
    end = offset + len(ids)
    nxt = base64.b64encode(str(end).encode()).decode().rstrip("=") if end < len(job.ids) else "null"
    return Response.text(200, _csv(job.header, page, job), "text/csv",
                         {"Sforce-NumberOfRecords": str(len(page)), "Sforce-Locator": nxt})
