"""Salesforce's error rows and the translation of simple-salesforce (and requests, zeep) exceptions.

Rows: crm-apis.md §2 "Errors"; per-record SaveResult and Bulk 2.0 codes share them, and so do
the Metadata API's per-component codes (``DUPLICATE_DEVELOPER_NAME`` …, which simple-salesforce
raises as a plain ``Exception("…(CODE, message)…")``) and its SOAP faults (zeep's ``Fault``,
``sf:CODE``). Only a transport failure is ``network``; an exception nothing here explains is a
defect to report, never retried. The org's API allocation is a rolling 24 h window with no
reset instant, so a spent budget (``REQUEST_LIMIT_EXCEEDED``) is checked again an hour later.

``login_failure`` turns the token endpoint's refusal into what is wrong and what to do.
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
    # Metadata API per-component codes and setup-object saves
    "DUPLICATE_DEVELOPER_NAME": Rule(_F, _P, "it exists already"),
    "DUPLICATE_VALUE": Rule(_F, _P, "it exists already"),
    "FIELD_INTEGRITY_EXCEPTION": Rule(_F, _P),
    "INVALID_FIELD_FOR_INSERT_UPDATE": Rule(_F, _C, "the integration user may read but not edit this field"),
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": Rule(_F, _C, "the integration user lacks a permission"),
    "INVALID_OPERATION": Rule(_F, _P),
    "LIMIT_EXCEEDED": Rule(_F, _P),
    "INVALID_XML": Rule(_F, _P),
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


_COMPONENT_ERROR = re.compile(r"\(([A-Z][A-Z0-9_]+), (.*?)\)(?:, |$)", re.S)


def from_salesforce(exc: BaseException, operation: str, now: datetime) -> CRMError:
    """Translate a simple-salesforce, requests or zeep exception by what it is."""
    if isinstance(exc, CRMError):
        return exc
    status = getattr(exc, "status", None)
    if status is None and is_network_error(exc):
        return SALESFORCE.network_error(operation, exc)
    if type(exc).__name__ == "SalesforceAuthenticationFailed":
        return login_failure(None, getattr(exc, "code", None), str(getattr(exc, "auth_message", "") or ""), operation)
    if type(exc).__name__ == "Fault" and type(exc).__module__.startswith("zeep"):
        # a SOAP fault from the Metadata API: faultcode "sf:CODE", faultstring "CODE: message"
        code = str(getattr(exc, "code", "") or "").rpartition(":")[2] or None
        message = str(getattr(exc, "message", exc))
        return SALESFORCE.make_error(operation, None, code, message, now=now)
    if type(exc).__name__ == "TransportError" and type(exc).__module__.startswith("zeep"):
        # the SOAP endpoint answered an HTTP error without a SOAP fault: its status decides
        return SALESFORCE.make_error(operation, getattr(exc, "status_code", None) or 500, None, str(exc), now=now)
    content = getattr(exc, "content", None)
    if status is not None:
        code, message = _first_error(content)
        body = content if isinstance(content, str) else json.dumps(content, default=str)
        return SALESFORCE.make_error(operation, status, code, message or str(exc), now=now, body=body)
    if type(exc) is Exception:
        # simple-salesforce's Metadata SaveResult failure: "\nLead.X__c: (CODE, message), …"
        m = _COMPONENT_ERROR.search(str(exc))
        if m is not None:
            return SALESFORCE.make_error(operation, None, m.group(1), m.group(2), now=now)
    return SALESFORCE.unknown_error(operation, exc)


def login_failure(auth: Any, code: Any, description: str, operation: str = "login") -> AuthError:
    """The token endpoint (or SOAP login) said no: what is wrong and what to do, by flow and code.

    ``auth``: the configured auth section (``None`` when unknown); ``code``: the OAuth ``error``
    (``invalid_grant``, ``invalid_client_id`` …) or the SOAP ``exceptionCode``. Retrying cannot
    help: an admin must fix the credentials or the app. The client's own
    ``Authentication failed. Response content: …`` wording is not repeated.
    """
    kind = getattr(auth, "kind", None)
    user = getattr(auth, "username", None)
    p = "LEADPILOT_SALESFORCE__"
    code_s = str(code or "")
    desc = (description or "").strip()
    if code_s == "INVALID AUTH" and kind == "client_credentials":
        what = (f"the client-credentials flow needs the org's My Domain, not the generic login host: set "
                f"{p}DOMAIN to your My Domain prefix (Setup → My Domain, e.g. {p}DOMAIN=acme.my; a sandbox: "
                "acme--uat.sandbox.my)")
    elif code_s == "invalid_client_id":
        what = (f"this org does not know the consumer key: check {p}AUTH__CONSUMER_KEY (the External Client "
                f"App's consumer key) and that {p}DOMAIN points at the org that owns the app (login for "
                "production, test for a sandbox, or your My Domain)")
    elif code_s == "invalid_client":
        what = f"the consumer secret is wrong: copy it again from the app into {p}AUTH__CONSUMER_SECRET"
    elif code_s == "invalid_grant" and "not supported on this domain" in desc:
        what = (f"the client-credentials flow needs the org's My Domain: set {p}DOMAIN to your My Domain "
                f"prefix, e.g. {p}DOMAIN=acme.my")
    elif code_s == "invalid_grant" and "approved" in desc:
        what = (f"{user or 'the integration user'} may not use this app: in the External Client App's policies "
                "choose 'Admin approved users are pre-authorized' and add the integration user's profile or "
                "permission set")
    elif code_s == "invalid_grant" and kind == "jwt":
        what = (f"the JWT for {user or 'the integration user'} was refused ({desc or code_s}): the certificate "
                f"uploaded to the app must match {p}AUTH__PRIVATE_KEY_FILE, {p}AUTH__USERNAME must be the "
                f"integration user, and {p}DOMAIN must be login (production), test (sandbox) or your My Domain")
    elif code_s == "invalid_grant" and kind == "client_credentials":
        what = (f"the client-credentials login was refused ({desc or code_s}): enable the client credentials "
                "flow in the app and choose its 'Run As' user (the integration user)")
    elif code_s in ("invalid_grant", "INVALID_LOGIN"):
        what = (f"Salesforce refused the password of {user or 'the integration user'}: the password or "
                f"security token is wrong, the user is locked out, or may not log in from this address. Check "
                f"{p}AUTH__PASSWORD and {p}AUTH__SECURITY_TOKEN (Settings → Reset My Security Token e-mails a "
                "new one); new integrations should use jwt or client_credentials (docs/salesforce.md)")
    else:
        what = f"Salesforce refused the login ({code_s or 'no code'}: {desc or 'no description'})"
    rule = Rule(Action.FAIL, Kind.CONFIG, "then run `leadpilot check`")
    err = AuthError(what, crm="salesforce", operation=operation, rule=rule)  # no "(status None, code)" noise
    err.code = code_s or None
    return err
