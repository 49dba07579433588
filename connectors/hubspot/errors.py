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
    "MISSING_SCOPES": Rule(_F, _C, "the access token lacks a scope: add it to the Service Key (or the legacy "
                           "private app) and run `leadpilot check`"),
    # Our own row: the token stayed rejected after asking for a new one (not a permission).
    "TOKEN_REJECTED": Rule(_F, _C),  # the message says what to do (``token_rejected_message``)
    "VALIDATION_ERROR": Rule(_F, _P),
    "OBJECT_NOT_FOUND": Rule(_F, _P),
}


def token_rejected_message(env_prefix: str) -> str:
    """What to do when HubSpot keeps answering 401: the token itself is wrong, not a permission."""
    return (f"HubSpot rejected the access token (401): it is invalid, expired or revoked. Create a Service Key "
            f"(HubSpot: Development > Keys > Service keys, with the scopes in docs/hubspot.md) or copy the current "
            f"token of your legacy private app, and put it in {env_prefix}ACCESS_TOKEN_FILE (or {env_prefix}"
            "ACCESS_TOKEN); leadpilot re-reads that file on the next 401")


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
        return HUBSPOT.network_error(operation, exc)
    if not status and not hasattr(exc, "body"):
        return HUBSPOT.unknown_error(operation, exc)
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
    scopes = required_scopes(body)
    if scopes:
        message += f" (required: {', '.join(scopes)})"
    err = HUBSPOT.make_error(operation, status or None, code, message, now=now, body=text, retry_after=retry_after)
    err.required_scopes = scopes  # type: ignore[attr-defined]  # read by the preflight
    return err


def required_scopes(body: dict[str, Any]) -> tuple[str, ...]:
    """The scopes a 403 ``MISSING_SCOPES`` body names: ``errors[].context.requiredGranularScopes``
    (newer responses) or ``requiredScopes`` (older ones), also found at the top level."""
    found: list[str] = []
    for item in [body, *(e for e in body.get("errors") or [] if isinstance(e, dict))]:
        context = item.get("context") or {}
        if not isinstance(context, dict):
            continue
        for key in ("requiredGranularScopes", "requiredScopes"):
            found += [str(s) for s in context.get(key) or [] if str(s) not in found]
    return tuple(found)


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None
