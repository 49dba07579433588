"""The Salesforce dialect of the sandbox CRM: every path under ``/services/``.

| path | module |
|---|---|
| ``POST /services/oauth2/token`` (password, client credentials, JWT bearer) | ``oauth`` |
| ``GET /services/oauth2/userinfo`` (who the token belongs to) | ``oauth`` |
| ``POST /services/Soap/u/{ver}`` (partner ``login``) | ``oauth`` |
| ``POST /services/Soap/m/{ver}/`` (Metadata: custom fields, layouts, list views) | ``metadata`` |
| ``/services/data/v{ver}/jobs/{ingest,query}…`` (Bulk API 2.0) | ``bulk`` |
| ``/services/data/v{ver}/{query,queryAll,composite/sobjects,sobjects,limits}…`` | ``rest`` |

Every ``/services/data`` call needs a live bearer token (else 401 ``INVALID_SESSION_ID``,
list body — the faults' ``token_expiry_after_calls`` retires tokens), counts against
the org's rolling 24 h API budget on the simulated clock (403 ``REQUEST_LIMIT_EXCEEDED``
once spent) and answers ``Sforce-Limit-Info: api-usage=N/M``, as a real org does.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime, timedelta

from sandbox.context import SandboxContext
from sandbox.http import Request, Response
from sandbox.salesforce import bulk, metadata, oauth, rest

API_VERSIONS = ("57.0", "58.0", "59.0", "60.0", "61.0", "62.0")
_DATA = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_SOAP = re.compile(r"^/services/Soap/([um])/(\d+\.\d)(/.*)?$")
_USAGE = "sf_usage"  # ctx.state key: simulated times of the API calls in the rolling window


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Salesforce REST errors are JSON LISTS (simple-salesforce indexes ``[0]``)."""
    return Response.json(status, [{"message": message, "errorCode": code}], headers)


def handle(ctx: SandboxContext, req: Request) -> Response:
    """Serve one request under ``/services/``."""
    path = req.path
    if path.rstrip("/") == "/services/oauth2/token":
        return oauth.token(ctx, req)
    if path.rstrip("/") == "/services/oauth2/userinfo" and req.method == "GET":
        return oauth.userinfo(ctx, req)
    soap = _SOAP.match(path)
    if soap is not None and req.method == "POST":
        if soap.group(1) == "u":
            return oauth.soap_login(ctx, req, soap.group(2))
        return metadata.handle(ctx, req, lambda: _spend(ctx))
    if path.rstrip("/") == "/services/data":
        return Response.json(200, [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v}
                                   for v in API_VERSIONS])
    data = _DATA.match(path)
    if data is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    version, tail = data.group(1), (data.group(2) or "/").lstrip("/")
    if not ctx.use_token(req.bearer):
        return error(401, "INVALID_SESSION_ID", "Session expired or invalid", _limit_header(ctx))
    used = _spend(ctx)
    if used is None:
        return error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", _limit_header(ctx))
    if tail.startswith("jobs/"):
        resp = bulk.handle(ctx, req, version, tail[len("jobs/"):])
    else:
        resp = rest.handle(ctx, req, version, tail, remaining=ctx.faults.sf_daily_budget - used)
    resp.headers["Sforce-Limit-Info"] = f"api-usage={used}/{ctx.faults.sf_daily_budget}"
    return resp


def _window(ctx: SandboxContext) -> tuple[deque[datetime], datetime]:
    calls: deque[datetime] = ctx.state.setdefault(_USAGE, deque())
    now = ctx.store.clock.now()
    horizon = now - timedelta(hours=24)
    while calls and calls[0] <= horizon:
        calls.popleft()
    return calls, now


def _spend(ctx: SandboxContext) -> int | None:
    """Count one API call; ``None`` when the rolling 24 h budget is already spent."""
    with ctx.lock:
        calls, now = _window(ctx)
        if len(calls) >= ctx.faults.sf_daily_budget:
            return None
        calls.append(now)
        return len(calls)


def api_usage(ctx: SandboxContext) -> int:
    """API calls made in the last 24 simulated hours."""
    with ctx.lock:
        return len(_window(ctx)[0])


def _limit_header(ctx: SandboxContext) -> dict[str, str]:
    return {"Sforce-Limit-Info": f"api-usage={api_usage(ctx)}/{ctx.faults.sf_daily_budget}"}
