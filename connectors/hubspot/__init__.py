"""HubSpot: the connector (hubspot-api-client), its client plumbing, token, mapping, errors and settings.

``connect`` is what ``connectors.registry`` loads; it imports the connector (and the client
library) only when called, so importing ``connectors.hubspot.settings`` stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.hubspot.settings import HubSpotPropertyNames, HubSpotSettings


def connect(
    section: HubSpotSettings,
    written: HubSpotPropertyNames,
    *,
    env_prefix: str,
    max_reasons: int,
    secret_files: Mapping[str, str],
    **kwargs: Any,
) -> Connector:
    """A ``HubSpotConnector`` whose token is re-read from ``secret_files["access_token"]`` on each
    401 when that file is given (``env_prefix`` names the variables in messages). ``max_reasons``
    is not used: HubSpot writes the reasons as they come. ``kwargs`` go to the connector."""
    from connectors.hubspot.connector import HubSpotConnector
    from connectors.hubspot.token import token_provider

    provider = token_provider(section, secret_files.get("access_token"), env_prefix)
    return HubSpotConnector(section, written, token_provider=provider, env_prefix=env_prefix, **kwargs)
