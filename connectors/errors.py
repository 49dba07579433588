"""Error classification shared by every CRM: a fault → (action, kind), and typed exceptions carrying it.

Actions: ``retry`` (wait and try the same call again), ``refresh`` (get a new token, then
retry), ``stop_cycle`` (the API budget is spent: end this cycle cleanly and resume later),
``fail`` (retrying cannot help). Kinds: ``transient`` (it will pass), ``config`` (an admin
must change something: credentials, permissions, fields), ``permanent`` (this request or
record is wrong).

Each CRM has an ``ErrorTable`` (its own rows, its resume rule) in its subpackage
(``connectors.salesforce.errors``, ``connectors.hubspot.errors``), together with the function
translating its client library's exceptions; the rows shared by all CRMs (``SHARED_RULES``:
HTTP statuses, transport faults, the unknown) live here. The retry policy (``connectors.retry``) acts on
``CRMError.action``; ``ErrorTable.worth_resending`` is the one rule for per-record write errors.

Messages carry the CRM, the operation, the status, the CRM's error code and an excerpt of
the response body — never a token (``redact`` strips anything that looks like one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
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

# Rows every CRM shares. key: "http:<status>", "network" (no response: connection refused or
# reset, timeout, TLS handshake) or "unknown" (an exception that is neither a CRM answer nor a
# transport failure: a defect to report, never retried); a CRM's own rows come first.
SHARED_RULES: dict[str, Rule] = {
    "network": Rule(_R, _T, "connection failed or timed out"),
    "unknown": Rule(_F, _P, "unexpected error: please report it to the leadpilot maintainers with this message"),
    "http:408": Rule(_R, _T),
    "http:429": Rule(_R, _T, "rate limited"),
    "http:500": Rule(_R, _T),
    "http:502": Rule(_R, _T),
    "http:503": Rule(_R, _T),
    "http:504": Rule(_R, _T),
    "http:401": Rule(Action.REFRESH, _T, "token expired or revoked"),
    "http:403": Rule(_F, _C, "the integration user lacks a permission"),
    "http:404": Rule(_F, _P),
    "http:400": Rule(_F, _P),
}


@dataclass(frozen=True, slots=True)
class ErrorTable:
    """One CRM's error rows and when its spent budget is worth trying again.

    ``rules`` keys: the CRM's error code (Salesforce ``errorCode``, HubSpot policy or category)
    or ``"http:<status>"``. ``resume_time(now)``: when a ``StopCycle`` may resume.
    """

    crm: str
    rules: Mapping[str, Rule]
    resume_time: Callable[[datetime], datetime]

    def code_rule(self, code: str | None) -> Rule | None:
        """The rule for an error code (own rows, then shared), or ``None`` when none names it."""
        key = code or ""
        return self.rules.get(key) or SHARED_RULES.get(key)

    def classify(self, status: int | None, code: str | None) -> Rule:
        """The rule for a fault: code (own, shared), then status (own, shared), then status class.

        With neither a status nor a code the fault is ``unknown`` (a bug to report, not a retry):
        transport failures are built by ``network_error``, which names their rule itself.
        """
        rule = self.code_rule(code)
        if rule is not None:
            return rule
        key = f"http:{status}"
        rule = self.rules.get(key) or SHARED_RULES.get(key)
        if rule is not None:
            return rule
        if status is not None and status >= 500:
            return Rule(_R, _T)
        if status is None:
            return SHARED_RULES["unknown"] if code is None else Rule(_F, _P)
        return Rule(_F, _P)

    def network_error(self, operation: str, exc: BaseException) -> CRMError:
        """No response at all (``is_network_error``): transient, under the retry policy."""
        return CRMError(f"{type(exc).__name__}: {exc}", crm=self.crm, operation=operation,
                        rule=SHARED_RULES["network"])

    def unknown_error(self, operation: str, exc: BaseException) -> CRMError:
        """An exception no row explains: reported as a defect, never retried."""
        return CRMError(f"{type(exc).__name__}: {exc}", crm=self.crm, operation=operation,
                        rule=SHARED_RULES["unknown"])

    def worth_resending(self, code: str) -> bool:
        """A per-record write error worth sending the same record again in a later batch.

        The one rule for both CRMs (and Bulk 2.0 results): the code's rule says ``retry``
        (``UNABLE_TO_LOCK_ROW``, a burst limit). A spent budget or a rejected token is not
        a record's problem: the batch call itself raises those.
        """
        rule = self.code_rule(code)
        return rule is not None and rule.action is Action.RETRY

    def make_error(
        self, operation: str, status: int | None, code: str | None, message: str, *, now: datetime, **kw: Any
    ) -> CRMError:
        """Build the typed exception for a fault, its rule looked up in this table."""
        rule = self.classify(status, code)
        if rule.action is Action.STOP_CYCLE:
            kw.setdefault("resume_at", self.resume_time(now))
            return StopCycle(message, crm=self.crm, operation=operation, rule=rule, status=status, code=code, **kw)
        if rule.action is Action.REFRESH:
            return AuthError(message, crm=self.crm, operation=operation, rule=rule, status=status, code=code, **kw)
        return CRMError(message, crm=self.crm, operation=operation, rule=rule, status=status, code=code, **kw)


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
    """A classified CRM fault. ``action``/``kind`` come from the CRM's ``ErrorTable``."""

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


_NETWORK_NAMES = {"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "SSLError", "ChunkedEncodingError",
                  "MaxRetryError", "ProtocolError", "NewConnectionError", "ReadTimeoutError", "TimeoutError",
                  "ConnectTimeoutError", "SSLCertVerificationError", "gaierror", "herror", "IncompleteRead",
                  "RemoteDisconnected"}


def is_network_error(exc: BaseException) -> bool:
    """A transport failure: connection refused/reset, timeout, TLS handshake (requests', urllib3's,
    http.client's and the socket module's exceptions by name, through the whole class tree).

    Any other ``OSError`` (a missing key file, a permission denied on disk) is not a network
    failure: retrying it cannot help.
    """
    return any(c.__name__ in _NETWORK_NAMES for c in type(exc).__mro__)
