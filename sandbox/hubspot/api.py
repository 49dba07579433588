"""The HubSpot CRM dialect: ``handle(ctx, req)`` for every path under ``/crm/``.

Authentication, rate limits and error bodies live here; objects (search, batch, single
records, associations) in ``objects`` and schema (owners, properties, groups) in
``schema``. Shapes follow ../shared/research/crm-apis.md §3, as seen on the wire from
hubspot-api-client 12.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandbox.context import SandboxContext
from sandbox.http import Request, Response
from sandbox.hubspot.auth import (
    TOKEN_INFO_PATH,
    Grant,
    grant_for,
    missing_scopes,
    required_scopes,
    token_info,
)

BURST_WINDOW_S = 10.0  # HubSpot's TEN_SECONDLY_ROLLING window


@dataclass
class HubSpotState:
    """What the dialect keeps between requests (one per sandbox, in ``ctx.state``)."""

    monotonic: Callable[[], float] = time.monotonic  # the burst window's clock (tests inject one)
    burst: deque[float] = field(default_factory=deque)
    day: date | None = None
    day_calls: int = 0
    correlation: itertools.count = field(default_factory=itertools.count)
    search_cache: OrderedDict[Any, list[dict[str, Any]]] = field(default_factory=OrderedDict)
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # object type -> name -> group
    prop_meta: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # created properties
    main_grant: Grant = field(default_factory=Grant)  # the scopes of credentials.hubspot_token
    tokens: dict[str, Grant] = field(default_factory=dict)  # more tokens (admin API): token -> grant
    lock: threading.Lock = field(default_factory=threading.Lock)


def state(ctx: SandboxContext) -> HubSpotState:
    """The dialect's state for ``ctx`` (created on first use)."""
    with ctx.lock:
        st = ctx.state.get("hubspot")
        if st is None:
            st = ctx.state["hubspot"] = HubSpotState()
        return st  # type: ignore[no-any-return]


def correlation_id(ctx: SandboxContext) -> str:
    n = next(state(ctx).correlation)
    return f"5a1d0b0c-0000-4000-8000-{n:012x}"


def error(ctx: SandboxContext, status: int, message: str, category: str, **extra: Any) -> Response:
    """HubSpot's error body: ``{"status": "error", "message", "correlationId", "category", ...}``."""
    body = {"status": "error", "message": message, "correlationId": correlation_id(ctx), "category": category, **extra}
    return Response.json(status, body)


def _rate_limited(ctx: SandboxContext, st: HubSpotState) -> tuple[Response | None, dict[str, str]]:
    """Admit or refuse one authenticated call; returns (429 response or None, rate-limit headers)."""
    f = ctx.faults
    today = ctx.store.clock.now().date()  # the daily limit resets at (simulated) midnight
    with st.lock:
        now = st.monotonic()
        while st.burst and st.burst[0] <= now - BURST_WINDOW_S:
            st.burst.popleft()
        if st.day != today:
            st.day, st.day_calls = today, 0
        refusal = None
        if f.hs_daily_limit and st.day_calls >= f.hs_daily_limit:
            refusal = "DAILY"
        elif f.hs_burst_limit and len(st.burst) >= f.hs_burst_limit or f.p_429 > 0 and ctx.rng.random() < f.p_429:
            refusal = "TEN_SECONDLY_ROLLING"
        if refusal is None:
            st.burst.append(now)
            st.day_calls += 1
        headers = {
            "X-HubSpot-RateLimit-Daily": str(f.hs_daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(f.hs_daily_limit - st.day_calls, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(BURST_WINDOW_S * 1000)),
            "X-HubSpot-RateLimit-Max": str(f.hs_burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(f.hs_burst_limit - len(st.burst), 0)),
        }
    if refusal is None:
        return None, headers
    body = {"status": "error", "message": f"You have reached your {refusal.lower()} limit.", "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(ctx), "policyName": refusal,
            "groupName": "publicapi:private-app:burst:sandbox" if refusal != "DAILY" else "publicapi:private-app:daily:sandbox"}
    # No Retry-After: the real API does not send one (crm-apis.md §3), and urllib3's default
    # Retry would otherwise sleep and retry inside hubspot-api-client, hiding the 429.
    return Response.json(429, body, headers), headers


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), name) for m, p, name in [
        ("POST", r"^/crm/v3/objects/(?P<t>[\w-]+)/search/?$", "objects.search"),
        ("POST", r"^/crm/v3/objects/(?P<t>[\w-]+)/batch/read/?$", "objects.batch_read"),
        ("POST", r"^/crm/v3/objects/(?P<t>[\w-]+)/batch/update/?$", "objects.batch_update"),
        ("GET", r"^/crm/v3/objects/(?P<t>[\w-]+)/?$", "objects.list_page"),
        ("GET", r"^/crm/v3/objects/(?P<t>[\w-]+)/(?P<id>[^/]+)/?$", "objects.get_one"),
        ("PATCH", r"^/crm/v3/objects/(?P<t>[\w-]+)/(?P<id>[^/]+)/?$", "objects.update_one"),
        ("POST", r"^/crm/v4/associations/(?P<t>[\w-]+)/(?P<to>[\w-]+)/batch/read/?$", "objects.associations"),
        ("GET", r"^/crm/v3/owners/?$", "schema.owners"),
        ("GET", r"^/crm/v3/owners/(?P<id>\d+)/?$", "schema.owner"),
        ("GET", r"^/crm/v3/properties/(?P<t>[\w-]+)/groups/?$", "schema.list_groups"),
        ("POST", r"^/crm/v3/properties/(?P<t>[\w-]+)/groups/?$", "schema.create_group"),
        ("GET", r"^/crm/v3/properties/(?P<t>[\w-]+)/groups/(?P<name>[^/]+)/?$", "schema.get_group"),
        ("GET", r"^/crm/v3/properties/(?P<t>[\w-]+)/?$", "schema.list_props"),
        ("POST", r"^/crm/v3/properties/(?P<t>[\w-]+)/?$", "schema.create_prop"),
        ("PATCH", r"^/crm/v3/properties/(?P<t>[\w-]+)/(?P<name>[^/]+)/?$", "schema.update_prop"),
        ("GET", r"^/crm/v3/properties/(?P<t>[\w-]+)/(?P<name>[^/]+)/?$", "schema.get_prop"),
    ]
]
OBJECT_ALIASES = {"contacts": "contacts", "contact": "contacts", "0-1": "contacts", "deals": "deals", "deal": "deals",
                  "0-3": "deals", "leads": "leads", "lead": "leads", "0-136": "leads"}
SEARCH_ROUTE = "objects.search"


def handle(ctx: SandboxContext, req: Request) -> Response:
    """Serve one HubSpot request."""
    if req.path.rstrip("/") == TOKEN_INFO_PATH and req.method == "POST":
        return token_info(ctx, req)
    grant = grant_for(ctx, req.bearer)
    if grant is None:
        return error(ctx, 401, "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                     "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                     "INVALID_AUTHENTICATION")
    st = state(ctx)
    refused, headers = _rate_limited(ctx, st)
    if refused is not None:
        return refused
    for method, pattern, name in _ROUTES:
        m = pattern.match(req.path)
        if m is None or method != req.method:
            continue
        params = m.groupdict()
        for key in ("t", "to"):
            if key in params:
                obj = OBJECT_ALIASES.get(params[key])
                if obj is None:
                    return error(ctx, 400, f"Unable to infer object type from: {params[key]}", "VALIDATION_ERROR")
                params[key] = obj
        resp = missing_scopes(ctx, grant, required_scopes(name, params)) or _call(name, ctx, req, params)
        if name != SEARCH_ROUTE:  # search responses carry no rate-limit headers (crm-apis.md §3)
            resp.headers.update(headers)
        return resp
    return error(ctx, 404, f"Unknown endpoint {req.method} {req.path}", "OBJECT_NOT_FOUND")


def _call(name: str, ctx: SandboxContext, req: Request, params: dict[str, str]) -> Response:
    from sandbox.hubspot import objects, schema
    module, func = name.split(".")
    target = {"objects": objects, "schema": schema}[module]
    try:
        body = req.json() if req.body else None
    except ValueError:
        return error(ctx, 400, "Invalid input JSON: the request body is not valid JSON.", "VALIDATION_ERROR")
    resp: Response = getattr(target, func)(ctx, req, params, body)
    return resp
