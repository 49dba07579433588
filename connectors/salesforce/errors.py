"""Salesforce's error rows and the translation of simple-salesforce (and requests) exceptions.

Rows: crm-apis.md §2 "Errors"; per-record SaveResult and Bulk 2.0 codes share them. The
org's API allocation is a rolling 24 h window with no reset instant, so a spent budget
(``REQUEST_LIMIT_EXCEEDED``) is checked again an hour later.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from connectors.errors import Action, AuthError, CRMError, ErrorTable, Kind, Rule, is_network_error

_R, _F = Action.RETRY, Action.FAIL
_T, _C, _P = Kind.TRANSIENT, Kind.CONFIG, Kind.PERMANENT

RULES: dict[str, Rule] = {
    "INVALID_SESSION_ID": Rule(Action.REFRESH, _T, "session expired"),
    "REQUEST_LIMIT_EXCEEDED": Rule(
        Action.STOP_CYCLE, _T, "the org's rolling 24 h API request allocation is spent"
    ),
    "INVALID_FIELD": Rule(_F, _C, "a configured field does not exist: run `leadpilot init-crm`"),
    "INVALID_TYPE": Rule(_F, _C),
    "INSUFFICIENT_ACCESS": Rule(_F, _C, "the integration user lacks a permission"),
    "INSUFFICIENT_ACCESS_OR_READONLY": Rule(_F, _C, "the integration user cannot edit this"),
    "API_DISABLED_FOR_ORG": Rule(_F, _C, "API access is not enabled for this org/user"),
    "MALFORMED_QUERY": Rule(_F, _P),
    "UNABLE_TO_LOCK_ROW": Rule(_R, _T, "record locked by another transaction"),
    "SERVER_UNAVAILABLE": Rule(_R, _T),
    "REQUEST_RUNNING_TOO_LONG": Rule(_R, _T),
    "QUERY_TIMEOUT": Rule(_R, _T),
    "ENTITY_IS_DELETED": Rule(_F, _P),
    "INVALID_CROSS_REFERENCE_KEY": Rule(_F, _P),
}


def resume_time(now: datetime) -> datetime:
    """A rolling 24 h allocation has no reset instant: check again in an hour."""
    return now + timedelta(hours=1)


SALESFORCE = ErrorTable("salesforce", RULES, resume_time)


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
        return SALESFORCE.make_error(operation, None, None, f"{type(exc).__name__}: {exc}", now=now)
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
    return SALESFORCE.make_error(operation, status, code, message or str(exc), now=now, body=body)
