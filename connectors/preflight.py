"""The preflight checklist ``leadpilot check`` prints: one item per thing a real org must allow.

Each connector's ``preflight`` returns ``CheckItem`` rows in the order an admin fixes them
(credentials and API access first, then fields, objects, users); ``sync/cli`` prints them as
``✓ name — detail`` / ``✗ name — detail`` followed by ``fix: …`` and exits 2 on any ✗.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckItem:
    """One line of the checklist.

    ``name`` says what was checked in an admin's words ("field Lead.LeadPilot_Score__c editable",
    "scope crm.objects.contacts.write"); ``detail`` what was found; ``fix`` what to do when
    ``ok`` is False (required then: a ✗ without a fix is a defect).
    """

    name: str
    ok: bool
    detail: str = ""
    fix: str | None = None

    def __post_init__(self) -> None:
        if not self.ok and not self.fix:
            raise ValueError(f"check item {self.name!r} failed without saying how to fix it")


def all_ok(items: Iterable[CheckItem]) -> bool:
    return all(item.ok for item in items)


def render(items: Iterable[CheckItem]) -> list[str]:
    """The checklist as printed lines (no colour: journald and CI read them too)."""
    lines: list[str] = []
    for item in items:
        mark = "✓" if item.ok else "✗"
        lines.append(f"{mark} {item.name}" + (f" — {item.detail}" if item.detail else ""))
        if not item.ok:
            lines.append(f"    fix: {item.fix}")
    return lines
