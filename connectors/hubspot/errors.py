"""HubSpot's error rows and the translation of hubspot-api-client exceptions.

Rows: crm-apis.md §3 "Errors and rate limits"; keys are a 429's ``policyName`` or an error's
``category`` (per-record errors of a batch carry the same categories). The daily limit
resets at midnight in the account's time zone (UTC assumed): a spent budget resumes then.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from connectors.errors import Action, CRMError, ErrorTable, Kind, Rule, is_network_error

_R, _F = Action.RETRY, Action.FAIL
_T, _C, _P = Kind.TRANSIENT, Kind.CONFIG, Kind.PERMANENT

RULES: dict[str, Rule] = {
    "TEN_SECONDLY_ROLLING": Rule(_R, _T, "ten-second burst limit"),
    "SECONDLY": Rule(_R, _T, "per-second limit"),
    "DAILY": Rule(Action.STOP_CYCLE, _T, "the account's daily API limit is spent"),
    "INVALID_AUTHENTICATION": Rule(Action.REFRESH, _T, "access token rejected"),
    "MISSING_SCOPES": Rule(_F, _C, "the private app lacks a scope"),
    "VALIDATION_ERROR": Rule(_F, _P),
    "OBJECT_NOT_FOUND": Rule(_F, _P),
}


def resume_time(now: datetime) -> datetime:
    """The next UTC midnight, when the daily limit resets."""
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


HUBSPOT = ErrorTable("hubspot", RULES, resume_time)


def from_hubspot(exc: BaseException, operation: str, now: datetime) -> CRMError:
    """Translate a hubspot-api-client ``ApiException`` (any of its per-package copies) or network error."""
    if isinstance(exc, CRMError):
        return exc
    status = getattr(exc, "status", None)
    if not status and is_network_error(exc):
        return HUBSPOT.make_error(operation, None, None, f"{type(exc).__name__}: {exc}", now=now)
    raw = getattr(exc, "body", None)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    try:
        body: Any = json.loads(text) if text else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = body.get("policyName") or body.get("category")
    headers = {k.lower(): v for k, v in dict(getattr(exc, "headers", None) or {}).items()}
    retry_after = _float(headers.get("retry-after"))
    if retry_after is None and code in ("TEN_SECONDLY_ROLLING", "SECONDLY"):
        # HubSpot sends no Retry-After; the window length is in a header (ms)
        retry_after = (_float(headers.get("x-hubspot-ratelimit-interval-milliseconds")) or 10_000) / 1000
    message = str(body.get("message") or getattr(exc, "reason", "") or type(exc).__name__)
    return HUBSPOT.make_error(operation, status or None, code, message, now=now, body=text, retry_after=retry_after)


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None
