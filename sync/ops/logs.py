"""Logging for the daemon: text or JSON lines, and a filter that keeps secrets out.

Secrets are removed twice: every configured secret value is registered and replaced
verbatim, and common credential shapes (bearer tokens, ``password=…``, HubSpot
private-app tokens, Salesforce session ids) are masked by pattern, so a token that
reaches a log line through an exception message is still not written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from connectors.registry import CRMS

MASK = "***"
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/!=-]{8,}"),
    re.compile(r"(?i)\b(access_token|refresh_token|client_secret|password|security_token|session_id|sessionid|token)"
               r"(\"?\s*[:=]\s*\"?)[^\s\"',&}]+"),
    re.compile(r"\bpat-[a-z]{2}\d-[0-9a-f-]{8,}", re.IGNORECASE),
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}"),  # Salesforce session id shape
)

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears in a log record (values < 6 chars are ignored)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def register_settings_secrets(settings: Any) -> None:
    """Register every secret of the settings (``SecretStr`` values, the store URL's password in
    each form a driver message could echo) so no log line carries them."""
    from pydantic import BaseModel, SecretStr

    from sync.config.urls import secret_pieces

    def walk(node: Any) -> None:
        if isinstance(node, SecretStr):
            register_secret(node.get_secret_value())
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name))

    walk(settings)
    for piece in secret_pieces(settings.resolved_store_url):
        register_secret(piece)


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and credential-shaped substrings masked."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for s in known:
        if s in text:
            text = text.replace(s, MASK)
    for pat in _PATTERNS:
        text = pat.sub(_mask_match, text)
    return text


def _mask_match(m: re.Match[str]) -> str:
    """Keep the label groups (``Bearer ``, ``password=``), mask the value."""
    return "".join(g or "" for g in m.groups()) + MASK


class RedactingFilter(logging.Filter):
    """Render the message (and any exception) once, redacted, so formatters see clean text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus any ``extra={...}`` fields."""

    _RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_text:
            out["exc"] = record.exc_text
        return redact(json.dumps(out, default=str, ensure_ascii=False))


def configure_logging(level: str = "INFO", fmt: str = "text", stream: Any = None) -> logging.Handler:
    """Install one handler on the root logger (replacing earlier leadpilot handlers)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("leadpilot")
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == "leadpilot":
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # urllib3's and the CRM clients' debug logs echo headers with tokens; keep them at WARNING
    for noisy in ("urllib3", *(name for crm in CRMS.values() for name in crm.loggers)):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
