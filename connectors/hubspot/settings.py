"""HubSpot settings: the access token (a Service Key or a legacy private-app token), the object type holding leads, the properties
leadpilot reads and the properties it writes, and the checks pydantic cannot express
(``HubSpotSettings.problems``).

Sections of the settings root in ``sync.config.settings``: ``LEADPILOT_HUBSPOT__…`` and
``LEADPILOT_HUBSPOT_PROPERTIES__…``. Messages name variables from the prefix the root passes in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from connectors.settings import Deadlines, FieldName, FrozenModel, Seconds


class HubSpotSettings(FrozenModel):
    """HubSpot: the access token (a Service Key, or a legacy private-app token), the object type
    holding leads, the properties leadpilot reads and the deadlines of its calls."""

    access_token: SecretStr | None = None
    object_type: Literal["contacts", "leads"] = "contacts"
    host: str = "https://api.hubapi.com"
    lookback_seconds: int = Field(default=300, ge=0)
    source_properties: dict[str, FieldName] = Field(default_factory=dict)
    text_properties: tuple[FieldName, ...] = ("jobtitle", "company", "industry", "message")
    ca_bundle: Path | None = None
    # Deadlines of every HubSpot call (connectors.settings.Deadlines)
    connect_timeout_seconds: Seconds = Deadlines().connect
    read_timeout_seconds: Seconds = Deadlines().read

    @property
    def has_credentials(self) -> bool:
        """An access token is configured (from the variable or its ``_FILE``)."""
        return self.access_token is not None

    @property
    def login_username(self) -> str | None:
        """A Service Key or private-app token belongs to no user."""
        return None

    @property
    def deadlines(self) -> Deadlines:
        """``LEADPILOT_HUBSPOT__CONNECT_TIMEOUT_SECONDS`` and ``__READ_TIMEOUT_SECONDS``."""
        return Deadlines(self.connect_timeout_seconds, self.read_timeout_seconds)

    def problems(self, env_prefix: str, required_by: str | None = None) -> list[str]:
        """Problems a valid-looking section can still have, one line each (``VARIABLE: what is
        wrong; e.g. VARIABLE=valid``). ``env_prefix``: this section's variable prefix
        (``LEADPILOT_HUBSPOT__``); ``required_by``: the setting that chose this CRM
        (``LEADPILOT_CRM=hubspot``), ``None`` when HubSpot is not the configured CRM."""
        if required_by and not (self.access_token and self.access_token.get_secret_value()):
            return [
                f"{env_prefix}ACCESS_TOKEN: not set but {required_by} needs an access token (a Service Key, or a legacy private-app token); "
                f"e.g. {env_prefix}ACCESS_TOKEN_FILE=/run/credentials/leadpilot.service/hubspot"
            ]
        return []


class HubSpotPropertyNames(FrozenModel):
    """The HubSpot properties leadpilot writes (created by ``leadpilot init-crm``)."""

    score: FieldName = "leadpilot_score"
    grade: FieldName = "leadpilot_grade"
    opportunity: FieldName = "leadpilot_opportunity"
    reasons: FieldName = "leadpilot_reasons"
    model_version: FieldName = "leadpilot_model_version"
    scored_at: FieldName = "leadpilot_scored_at"
    routing_reason: FieldName = "leadpilot_routing_reason"
    owner: FieldName = "hubspot_owner_id"
