"""Salesforce field types: how values look on the wire and how written values are checked.

The store keeps Python values (``datetime`` aware in UTC, ``date``, ``int``/``float``,
``bool``, ``str``); this module turns them into Salesforce's JSON and CSV spellings and
turns written JSON / CSV values back into store values, by the field's describe type.
Shared by the REST (``rest``), Bulk 2.0 (``bulk``) and SOQL (``soql``) modules.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

TEXT_TYPES = frozenset({"string", "picklist", "multipicklist", "textarea", "email", "url", "phone", "combobox"})
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})

# Fields the platform maintains: writing them is INVALID_FIELD_FOR_INSERT_UPDATE.
READ_ONLY = frozenset({"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "IsConverted",
                       "ConvertedOpportunityId", "ConvertedDate", "IsClosed", "IsWon",
                       "LastActivityDate"})

# Metadata API CustomField ``type`` -> describe type of the created field.
METADATA_TYPES = {
    "Number": "double", "Currency": "currency", "Percent": "percent", "Text": "string",
    "TextArea": "textarea", "LongTextArea": "textarea", "Email": "email", "Url": "url",
    "Phone": "phone", "Checkbox": "boolean", "Date": "date", "DateTime": "datetime", "Picklist": "picklist",
}


class BadValue(ValueError):
    """A written value does not fit the field's type (message names field and value)."""


def category(ftype: str) -> str:
    """``text`` | ``id`` | ``number`` | ``boolean`` | ``date`` | ``datetime`` for a describe type."""
    if ftype in NUMBER_TYPES:
        return "number"
    if ftype in ID_TYPES:
        return "id"
    if ftype in ("boolean", "date", "datetime"):
        return ftype
    return "text"


def ms(value: datetime) -> datetime:
    """Salesforce keeps datetimes to the millisecond: compare and print at that precision."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_datetime(value: datetime, csv: bool = False) -> str:
    """REST JSON prints ``2024-01-05T09:00:00.000+0000``; Bulk 2.0 CSV prints ``…000Z``."""
    v = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    tail = "Z" if csv else "+0000"
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}{tail}"


def to_json(value: Any) -> Any:
    """A store value as Salesforce REST JSON shows it."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_csv(value: Any) -> str:
    """A store value as a Bulk 2.0 result cell (null is the empty cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value, csv=True)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a Number(18,0) field prints as 50, not 50.0
    return str(value)


def parse_datetime(text: str) -> datetime:
    """``2024-01-01T00:00:00Z`` / ``…00.000+0000`` / ``…00+05:30`` -> aware UTC datetime."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    elif len(t) > 5 and t[-5] in "+-" and t[-4:].isdigit():
        t = t[:-2] + ":" + t[-2:]  # +0000 -> +00:00
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        raise ValueError(f"datetime {text!r} has no offset")
    return dt.astimezone(UTC)


def coerce(field: str, ftype: str, value: Any) -> Any:
    """A written (JSON or CSV-string) value -> the store value for a field of ``ftype``."""
    if value is None:
        return None
    kind = category(ftype)
    try:
        if kind == "number":
            if isinstance(value, bool):
                raise ValueError
            num = float(value) if isinstance(value, str) else value
            if not isinstance(num, int | float):
                raise ValueError
            return int(num) if ftype == "int" else float(num)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if kind == "datetime":
            return value if isinstance(value, datetime) else parse_datetime(str(value))
        if kind == "date":
            return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        raise BadValue(f"{field}: value not of required type: {value}") from None
    if isinstance(value, dict | list):
        raise BadValue(f"{field}: value not of required type: {value}")
    return value if isinstance(value, str) else str(value)
