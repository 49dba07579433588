"""The base of every settings section (each CRM's, and the sections ``sync.config.settings`` adds),
and what the rest of leadpilot asks of a CRM's section."""

from __future__ import annotations

import re
from typing import Annotated, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict

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

    def problems(self, env_prefix: str, required_by: str | None = None) -> list[str]:
        """Problems a valid-looking section can still have, one line each, naming the variable."""
        ...
