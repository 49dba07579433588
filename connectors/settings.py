"""The base of every settings section (each CRM's, and the sections ``sync.config.settings`` adds),
and what the rest of leadpilot asks of a CRM's section."""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _field_name(value: str) -> str:
    # Field names go into queries (SOQL's SELECT list, HubSpot's properties) as they are:
    # only an identifier is safe there, whatever the query builder quotes.
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError("not a field name (letters, digits and underscores, starting with a letter)")
    return value


# A CRM field or property name, checked before any query is built with it.
FieldName = Annotated[str, AfterValidator(_field_name)]


class FrozenModel(BaseModel):
    """Settings sections: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Deadlines(NamedTuple):
    """The deadlines of every call to a CRM, in seconds: to connect, and to wait for a response
    once connected (the ``(connect, read)`` pair requests and urllib3 take as a timeout). A call
    that runs past one is a transient network fault, retried under the one retry policy."""

    connect: float = 10.0
    read: float = 60.0


# A deadline setting (seconds, above zero); each CRM section names its own two (their variable
# names differ between CRMs) with ``Deadlines()``'s defaults and returns them as ``deadlines``.
Seconds = Annotated[float, Field(gt=0)]


class CRMSection(Protocol):
    """A CRM's settings section, as the wiring and ``leadpilot check`` use it."""

    @property
    def has_credentials(self) -> bool:
        """Credentials are configured (``crm = "sandbox"`` picks the first CRM that has them)."""
        ...

    @property
    def login_username(self) -> str | None:
        """The CRM user leadpilot logs in as, when its auth names one (never routed to)."""
        ...

    @property
    def deadlines(self) -> Deadlines:
        """The deadlines of every call to the CRM (its connect and read timeout settings)."""
        ...

    def problems(self, env_prefix: str, required_by: str | None = None) -> list[str]:
        """Problems a valid-looking section can still have, one line each, naming the variable."""
        ...
