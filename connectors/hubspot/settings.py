"""HubSpot settings: the private-app token, the object type holding leads, the properties
leadpilot reads and the properties it writes.

Sections of the settings root in ``sync.config.settings``: ``LEADPILOT_HUBSPOT__…`` and
``LEADPILOT_HUBSPOT_PROPERTIES__…``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from connectors.settings import FrozenModel


class HubSpotSettings(FrozenModel):
    """HubSpot: private-app token, the object type holding leads and the properties leadpilot reads."""

    access_token: SecretStr | None = None
    object_type: Literal["contacts", "leads"] = "contacts"
    host: str = "https://api.hubapi.com"
    lookback_seconds: int = Field(default=300, ge=0)
    source_properties: dict[str, str] = Field(default_factory=dict)
    text_properties: tuple[str, ...] = ("jobtitle", "company", "industry", "message")
    ca_bundle: Path | None = None


class HubSpotPropertyNames(FrozenModel):
    """The HubSpot properties leadpilot writes (created by ``leadpilot init-crm``)."""

    score: str = "leadpilot_score"
    grade: str = "leadpilot_grade"
    opportunity: str = "leadpilot_opportunity"
    reasons: str = "leadpilot_reasons"
    model_version: str = "leadpilot_model_version"
    scored_at: str = "leadpilot_scored_at"
    owner: str = "hubspot_owner_id"
