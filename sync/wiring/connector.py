"""``make_connector(settings)``: the one place a Connector is built from settings.

``settings.crm`` picks the CRM. For ``"sandbox"`` the caller fills ``settings.salesforce``
(``login_url``/``instance_url`` and ``ca_bundle`` pointing at the sandbox) or
``settings.hubspot`` (``host``, ``ca_bundle``) and passes ``crm="salesforce"|"hubspot"``;
without it the Salesforce dialect is used when Salesforce auth is configured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from connectors.base import Connector
from connectors.hubspot.connector import HubSpotConnector
from connectors.salesforce.connector import SalesforceConnector
from sync.config.settings import ENV_PREFIX, Settings

TOKEN_FILE_VAR = f"{ENV_PREFIX}HUBSPOT__ACCESS_TOKEN_FILE"


def _hubspot_token_provider(settings: Settings) -> Any:
    """Re-reads a rotated token file on each 401 (systemd credentials / docker secrets)."""
    path = os.environ.get(TOKEN_FILE_VAR)
    static = settings.hubspot.access_token.get_secret_value() if settings.hubspot.access_token else None
    if not path:
        if static is None:
            raise ValueError(f"HubSpot access token is not set: {ENV_PREFIX}HUBSPOT__ACCESS_TOKEN or {TOKEN_FILE_VAR}")
        return lambda: static

    def read() -> str:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{TOKEN_FILE_VAR}: cannot read {path!r}: {exc.strerror}") from exc

    return read


def make_connector(settings: Settings, crm: str | None = None, **kwargs: Any) -> Connector:
    """The configured connector. ``kwargs`` (sleep, now, rng, policy) are passed through (tests)."""
    which = crm or settings.crm
    if which == "sandbox":
        which = "salesforce" if settings.salesforce.auth is not None else "hubspot"
    if which == "salesforce":
        return SalesforceConnector(settings.salesforce, settings.fields,
                                   max_reasons=settings.scoring.max_reasons_chars, **kwargs)
    if which == "hubspot":
        return HubSpotConnector(settings.hubspot, settings.hubspot_properties,
                                token_provider=_hubspot_token_provider(settings), **kwargs)
    raise ValueError(f"unknown CRM {which!r}: set LEADPILOT_CRM to salesforce, hubspot or sandbox")
