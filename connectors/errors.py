"""The one error table: every CRM fault → (action, kind), and typed exceptions carrying it.

Actions: ``retry`` (wait and try the same call again), ``refresh`` (get a new token, then
retry), ``stop_cycle`` (the API budget is spent: end this cycle cleanly and resume later),
``fail`` (retrying cannot help). Kinds: ``transient`` (it will pass), ``config`` (an admin
must change something: credentials, permissions, fields), ``permanent`` (this request or
record is wrong). Connectors translate library exceptions with ``from_salesforce`` /
``from_hubspot``; the retry policy (``connectors.retry``) acts on ``CRMError.action``.

Messages carry the CRM, the operation, the status, the CRM's error code and an excerpt of
the response body — never a token (``redact`` strips anything that looks like one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    RETRY = "retry"
    REFRESH = "refresh"
    STOP_CYCLE = "stop_cycle"
    FAIL = "fail"


class Kind(StrEnum):
    TRANSIENT = "transient"
    CONFIG = "config"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Rule:
    action: Action
    kind: Kind
    hint: str = ""


_R, _F = Action.RETRY, Action.FAIL
_T, _C, _P = Kind.TRANSIENT, Kind.CONFIG, Kind.PERMANENT

# (crm, key) → rule. key: the CRM's error code / HubSpot policy or category, "http:<status>",
# "network". crm "*" applies to both. Looked up most specific first (see ``classify``).
RULES: dict[tuple[str, str], Rule] = {
    ("*", "network"): Rule(_R, _T, "connection failed or timed out"),
    ("*", "http:408"): Rule(_R, _T),
    ("*", "http:429"): Rule(_R, _T, "rate limited"),
    ("*", "http:500"): Rule(_R, _T),
    ("*", "http:502"): Rule(_R, _T),
    ("*", "http:503"): Rule(_R, _T),
    ("*", "http:504"): Rule(_R, _T),
    ("*", "http:401"): Rule(Action.REFRESH, _T, "token expired or revoked"),
    ("*", "http:403"): Rule(_F, _C, "the integration user lacks a permission"),
    ("*", "http:404"): Rule(_F, _P),
    ("*", "http:400"): Rule(_F, _P),
    # Salesforce (crm-apis.md §2 "Errors"); per-record SaveResult codes share the table.
    ("salesforce", "INVALID_SESSION_ID"): Rule(Action.REFRESH, _T, "session expired"),
    ("salesforce", "REQUEST_LIMIT_EXCEEDED"): Rule(
        Action.STOP_CYCLE, _T, "the org's rolling 24 h API request allocation is spent"
    ),
    ("salesforce", "INVALID_FIELD"): Rule(_F, _C, "a configured field does not exist: run `leadpilot init-crm`"),
    ("salesforce", "INVALID_TYPE"): Rule(_F, _C),
    ("salesforce", "INSUFFICIENT_ACCESS"): Rule(_F, _C, "the integration user lacks a permission"),
    ("salesforce", "INSUFFICIENT_ACCESS_OR_READONLY"): Rule(_F, _C, "the integration user cannot edit this"),
    ("salesforce", "API_DISABLED_FOR_ORG"): Rule(_F, _C, "API access is not enabled for this org/user"),
    ("salesforce", "MALFORMED_QUERY"): Rule(_F, _P),
    ("salesforce", "UNABLE_TO_LOCK_ROW"): Rule(_R, _T, "record locked by another transaction"),
    ("salesforce", "SERVER_UNAVAILABLE"): Rule(_R, _T),
    ("salesforce", "REQUEST_RUNNING_TOO_LONG"): Rule(_R, _T),
    ("salesforce", "QUERY_TIMEOUT"): Rule(_R, _T),
    ("salesforce", "ENTITY_IS_DELETED"): Rule(_F, _P),
    ("salesforce", "INVALID_CROSS_REFERENCE_KEY"): Rule(_F, _P),
    # HubSpot (crm-apis.md §3 "Errors and rate limits")
    ("hubspot", "TEN_SECONDLY_ROLLING"): Rule(_R, _T, "ten-second burst limit"),
    ("hubspot", "SECONDLY"): Rule(_R, _T, "per-second limit"),
    ("hubspot", "DAILY"): Rule(Action.STOP_CYCLE, _T, "the account's daily API limit is spent"),
    ("hubspot", "INVALID_AUTHENTICATION"): Rule(Action.REFRESH, _T, "access token rejected"),
    ("hubspot", "MISSING_SCOPES"): Rule(_F, _C, "the private app lacks a scope"),
    ("hubspot", "VALIDATION_ERROR"): Rule(_F, _P),
    ("hubspot", "OBJECT_NOT_FOUND"): Rule(_F, _P),
}


def classify(crm: str, status: int | None, code: str | None) -> Rule:
    """The rule for a fault: CRM code, then status (per CRM, then shared), then status class."""
    for key in ((crm, code or ""), ("*", code or ""), (crm, f"http:{status}"), ("*", f"http:{status}")):
        if key in RULES:
            return RULES[key]
    if status is not None and status >= 500:
        return Rule(_R, _T)
    if status is None:
        return RULES[("*", "network")]
    return Rule(_F, _P)


_SECRETISH = re.compile(
    r"(Bearer\s+)\S+|(\"?(?:access_token|sessionId|session_id|password|client_secret)\"?\s*[:=]\s*\"?)[^\",&<\s]+"
    r"|pat-[a-z0-9]+-[0-9a-f-]+|00D[0-9A-Za-z]{12,15}![0-9A-Za-z._]+",
    re.IGNORECASE,
)


def redact(text: str, limit: int = 300) -> str:
    """A body excerpt safe for logs: token-like strings replaced, cut at ``limit`` characters."""

    def sub(m: re.Match[str]) -> str:
        return (m.group(1) or m.group(2) or "") + "[redacted]"

    out = _SECRETISH.sub(sub, text)
    return out if len(out) <= limit else out[:limit] + "…"


class CRMError(Exception):
    """A classified CRM fault. ``action``/``kind`` come from the one table (``RULES``)."""

    def __init__(
        self,
        message: str,
        *,
        crm: str,
        operation: str,
        rule: Rule,
        status: int | None = None,
        code: str | None = None,
        body: str = "",
        retry_after: float | None = None,
        resume_at: datetime | None = None,
    ) -> None:
        self.crm, self.operation, self.rule = crm, operation, rule
        self.status, self.code, self.body = status, code, redact(body)
        self.retry_after, self.resume_at = retry_after, resume_at
        parts = [f"{crm} {operation}: {redact(message, 500)}"]
        if status is not None or code:
            parts.append(f"(status {status}, {code or 'no code'})")
        if rule.hint:
            parts.append(f"— {rule.hint}")
        if resume_at is not None:
            parts.append(f"; resume after {resume_at.isoformat()}")
        super().__init__(" ".join(parts))

    @property
    def action(self) -> Action:
        return self.rule.action

    @property
    def kind(self) -> Kind:
        return self.rule.kind


class StopCycle(CRMError):
    """The API budget is spent: end this cycle cleanly; ``resume_at`` says when to try again."""


class AuthError(CRMError):
    """Credentials were rejected and could not be refreshed."""


def make_error(
    crm: str, operation: str, status: int | None, code: str | None, message: str, *, now: datetime, **kw: Any
) -> CRMError:
    """Build the typed exception for a fault, its rule looked up in the table."""
    rule = classify(crm, status, code)
    if rule.action is Action.STOP_CYCLE:
        kw.setdefault("resume_at", resume_time(crm, now))
        return StopCycle(message, crm=crm, operation=operation, rule=rule, status=status, code=code, **kw)
    if rule.action is Action.REFRESH:
        return AuthError(message, crm=crm, operation=operation, rule=rule, status=status, code=code, **kw)
    return CRMError(message, crm=crm, operation=operation, rule=rule, status=status, code=code, **kw)


def resume_time(crm: str, now: datetime) -> datetime:
    """When a spent daily budget is worth trying again.

    HubSpot resets its daily limit at midnight (account time zone; UTC assumed). Salesforce's
    allocation is a rolling 24 h window with no reset instant: check again in an hour.
    """
    if crm == "hubspot":
        return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return now + timedelta(hours=1)


# ---------------------------------------------------------------- library exception → CRMError
_NETWORK_NAMES = {"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "SSLError", "ChunkedEncodingError",
                  "MaxRetryError", "ProtocolError", "NewConnectionError", "ReadTimeoutError", "TimeoutError"}


def is_network_error(exc: BaseException) -> bool:
    return any(c.__name__ in _NETWORK_NAMES for c in type(exc).__mro__) or isinstance(exc, OSError)


def _first_error(content: Any) -> tuple[str | None, str]:
    """(errorCode, message) from a Salesforce error body (a JSON list) or any other shape."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode"), str(content[0].get("message", ""))
    if isinstance(content, dict):
        return content.get("errorCode") or content.get("error"), str(
            content.get("message") or content.get("error_description") or ""
        )
    return None, str(content)


def from_salesforce(exc: BaseException, operation: str, now: datetime) -> CRMError:
    """Translate a simple-salesforce (or requests) exception."""
    if isinstance(exc, CRMError):
        return exc
    status = getattr(exc, "status", None)
    if status is None and is_network_error(exc):
        return make_error("salesforce", operation, None, None, f"{type(exc).__name__}: {exc}", now=now)
    content = getattr(exc, "content", None)
    if type(exc).__name__ == "SalesforceAuthenticationFailed":
        # the token endpoint said no: refreshing again cannot help, an admin must fix credentials
        code, message = getattr(exc, "code", None), str(getattr(exc, "message", exc))
        rule = Rule(Action.FAIL, Kind.CONFIG, "login failed: check the Salesforce credentials and connected app")
        return AuthError(message, crm="salesforce", operation=operation, rule=rule, code=str(code or ""))
    code, message = _first_error(content)
    if code is None and message == "None":
        # zeep/metadata failures arrive as plain exceptions "(STATUS_CODE, message)"
        m = re.search(r"\((\w+), (.*?)\)", str(exc))
        code, message = (m.group(1), m.group(2)) if m else (None, str(exc))
    body = content if isinstance(content, str) else json.dumps(content, default=str)
    return make_error("salesforce", operation, status, code, message or str(exc), now=now, body=body)


def from_hubspot(exc: BaseException, operation: str, now: datetime) -> CRMError:
    """Translate a hubspot-api-client ``ApiException`` (any of its per-package copies) or network error."""
    if isinstance(exc, CRMError):
        return exc
    status = getattr(exc, "status", None)
    if not status and is_network_error(exc):
        return make_error("hubspot", operation, None, None, f"{type(exc).__name__}: {exc}", now=now)
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
    return make_error("hubspot", operation, status or None, code, message, now=now, body=text, retry_after=retry_after)


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None
