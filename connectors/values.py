"""Pure value coercion shared by the CRM mappings: CRMs send strings, nulls and odd types.

Nothing here raises on bad data from a CRM field except where a record cannot be used at
all (no id, no modification time): a wrong-typed optional value becomes ``None``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any


class MappingError(ValueError):
    """A CRM record lacks what leadpilot cannot do without (its id or modification time)."""


def to_text(value: Any) -> str | None:
    """A trimmed non-empty string, or ``None`` (for null, empty, containers)."""
    if value is None or isinstance(value, (dict, list, tuple, set, bytes)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = " ".join(str(value).split())
    return text or None


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def to_number(value: Any) -> float | None:
    """A finite float from a number or numeric string ("1,200" and " 3.5 " accepted), else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, str):
        s = value.strip().replace(",", "").replace("_", "")
        if _NUMBER.match(s):
            f = float(s)
            return f if math.isfinite(f) else None
    return None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def to_datetime(value: Any) -> datetime | None:
    """Aware UTC datetime from ISO 8601 (``Z``, ``+0000``, ``+00:00``), epoch milliseconds or a date."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)  # HubSpot: epoch ms
        except (OverflowError, ValueError, OSError):
            return None
    if isinstance(value, str):
        s = value.strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            return None
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    return None


def require_datetime(value: Any, what: str, record_id: str) -> datetime:
    dt = to_datetime(value)
    if dt is None:
        raise MappingError(f"record {record_id}: {what} is missing or not a date-time ({value!r})")
    return dt


def iso_utc(dt: datetime) -> str:
    """Salesforce/HubSpot ISO form with milliseconds and ``Z``."""
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.astimezone(UTC).microsecond // 1000:03d}Z"


def epoch_ms(dt: datetime) -> int:
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return int(round(dt.timestamp() * 1000))


def _label(name: str) -> str:
    base = re.sub(r"__c$", "", name)
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base).replace("_", " ")
    return base.strip().capitalize()


def text_card(record: Mapping[str, Any], fields: Iterable[str]) -> str:
    """The text scoring reads: each configured field's value as ``Label: value``, one per line.

    Empty and missing fields are left out; repeated identical values appear once.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for name in fields:
        text = to_text(record.get(name))
        if text is None or text in seen:
            continue
        seen.add(text)
        lines.append(f"{_label(name)}: {text}")
    return "\n".join(lines)
