"""Bulk API 2.0 ingest (update) for large write-backs, through simple-salesforce's Bulk 2.0 client.

``sf.bulk2.Lead.update(..., wait=0)`` would poll with real sleeps and without a token
refresh between steps; the same library client's steps (create, upload, close, get job,
results) are driven here so that each step goes through the retry policy and polling uses
the injected sleep. Result CSVs are parsed by column name (the client orders columns from
a ``set()``); ``sf__Error`` reads ``CODE:message``. A failed row is resent in a later round
when Salesforce's ``ErrorTable.worth_resending`` says so (the rule sObject Collections use).
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation, ResultsType, _Bulk2Client

from connectors.records import WriteResult
from connectors.salesforce.errors import SALESFORCE

DONE_STATES = ("JobComplete", "Failed", "Aborted")


def to_csv(rows: Sequence[dict[str, str]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def parse_results(successful: str, failed: str, unprocessed: str) -> dict[str, tuple[bool, str | None, str | None]]:
    """lead id → (ok, error code, message) from the three result CSVs."""
    out: dict[str, tuple[bool, str | None, str | None]] = {}
    for row in csv.DictReader(io.StringIO(successful)):
        rid = row.get("sf__Id") or row.get("Id")
        if rid:
            out[rid] = (True, None, None)
    for row in csv.DictReader(io.StringIO(failed)):
        rid = row.get("Id") or row.get("sf__Id")
        if rid:
            code, _, message = (row.get("sf__Error") or "UNKNOWN_EXCEPTION:no error text").partition(":")
            out[rid] = (False, code.strip(), message.rstrip(":-").strip() or code)
    for row in csv.DictReader(io.StringIO(unprocessed)):
        rid = row.get("Id")
        if rid:
            out[rid] = (False, "UNPROCESSED", "Bulk job ended before this record was processed")
    return out


def ingest_update(
    sf_provider: Callable[[], Salesforce],
    rows: Sequence[dict[str, str]],
    columns: list[str],
    call: Callable[[str, Callable[[], Any]], Any],
    sleep: Callable[[float], None],
    poll_seconds: float = 2.0,
    max_polls: int = 1800,
) -> list[WriteResult]:
    """Run one Bulk 2.0 update job for ``rows``; a ``WriteResult`` per row, in row order.

    ``call(operation, fn)`` runs ``fn`` under the retry policy; ``sf_provider`` returns the
    current client (a refreshed token changes its session id, so each step rebuilds headers).
    """

    def client() -> _Bulk2Client:
        sf = sf_provider()
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + sf.session_id,
                   "X-PrettyPrint": "1"}
        return _Bulk2Client("Lead", sf.bulk2_url, headers, sf.session)

    job = call("bulk2 create job", lambda: client().create_job(Operation.update))
    job_id = str(job["id"])
    try:
        call("bulk2 upload", lambda: client().upload_job_data(job_id, to_csv(rows, columns)))
        call("bulk2 close job", lambda: client().close_job(job_id))
        for _ in range(max_polls):
            info = call("bulk2 poll", lambda: client().get_job(job_id, False))
            if info.get("state") in DONE_STATES:
                break
            sleep(poll_seconds)
        else:
            raise TimeoutError(f"Bulk 2.0 job {job_id} did not finish after {max_polls} polls")
    except Exception:
        _abort_quietly(client, job_id)
        raise
    if info.get("state") != "JobComplete":
        msg = str(info.get("errorMessage") or info.get("state"))
        return [WriteResult(r["Id"], False, "BULK_JOB_FAILED", msg, transient=False) for r in rows]
    results = parse_results(
        call("bulk2 results", lambda: client().get_ingest_results(job_id, ResultsType.successful)),
        call("bulk2 results", lambda: client().get_ingest_results(job_id, ResultsType.failed)),
        call("bulk2 results", lambda: client().get_ingest_results(job_id, ResultsType.unprocessed)),
    )
    out = []
    for row in rows:
        ok, code, message = results.get(row["Id"], (False, "MISSING_RESULT", "the Bulk job reported nothing"))
        transient = not ok and (code in ("UNPROCESSED", "MISSING_RESULT") or SALESFORCE.worth_resending(code or ""))
        out.append(WriteResult(row["Id"], ok, code, message, transient=transient))
    return out


def _page(client: Callable[[], _Bulk2Client], job_id: str, locator: str, size: int) -> Any:
    return client().get_query_results(job_id, locator, size)


def _abort_quietly(client: Callable[[], _Bulk2Client], job_id: str) -> None:
    with contextlib.suppress(Exception):  # best effort: an abandoned job expires by itself
        client().abort_job(job_id, False)


def query_rows(
    sf_provider: Callable[[], Salesforce],
    soql: str,
    call: Callable[[str, Callable[[], Any]], Any],
    sleep: Callable[[float], None],
    page_size: int = 10_000,
    poll_seconds: float = 2.0,
    max_polls: int = 1800,
) -> Iterator[dict[str, str | None]]:
    """Rows of a Bulk API 2.0 query job, one result page (``page_size`` rows, by locator) at a time.

    Values are CSV text as Salesforce sends them, an empty cell as None. Each step (create, poll,
    each page) runs under the retry policy on its own, so a fault on page k re-reads page k; a
    locator coming back twice stops the read (as the REST pager does with a repeated cursor).
    """

    def client() -> _Bulk2Client:
        sf = sf_provider()
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + sf.session_id,
                   "X-PrettyPrint": "1"}
        return _Bulk2Client("Lead", sf.bulk2_url, headers, sf.session)

    job = call("bulk2 query", lambda: client().create_job(Operation.query, query=soql))
    job_id = str(job["id"])
    for _ in range(max_polls):
        info = call("bulk2 poll", lambda: client().get_job(job_id, True))
        if info.get("state") in DONE_STATES:
            break
        sleep(poll_seconds)
    else:
        _abort_quietly(client, job_id)
        raise TimeoutError(f"Bulk 2.0 query job {job_id} did not finish after {max_polls} polls")
    if info.get("state") != "JobComplete":
        raise RuntimeError(f"Bulk 2.0 query job {job_id} ended {info.get('state')}: {info.get('errorMessage') or ''}")
    locator, seen = "", set()
    while True:
        page = call("bulk2 results", partial(_page, client, job_id, locator, page_size))
        for row in csv.DictReader(io.StringIO(page["records"])):
            yield {k: (v if v != "" else None) for k, v in row.items()}
        locator = page["locator"]
        if not locator:
            return
        if locator in seen:
            raise RuntimeError(f"Salesforce returned the Bulk query locator {locator} twice; stopping this read")
        seen.add(locator)
