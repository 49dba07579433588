"""Salesforce: the connector (simple-salesforce), its session, Bulk API 2.0, mapping, errors and settings.

``connect`` is what ``connectors.registry`` loads; it imports the connector (and the client
library) only when called, so importing ``connectors.salesforce.settings`` stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.salesforce.settings import FieldNames, SalesforceSettings


def connect(
    section: SalesforceSettings,
    written: FieldNames,
    *,
    env_prefix: str,
    max_reasons: int,
    secret_files: Mapping[str, str],
    **kwargs: Any,
) -> Connector:
    """A ``SalesforceConnector`` writing reasons of at most ``max_reasons`` characters.

    ``env_prefix`` and ``secret_files`` are not used: Salesforce secrets are read once, when the
    settings load (every auth mode but a plain token logs in again with them by itself).
    ``kwargs`` (sleep, now, rng, policy, stale_days) go to the connector.
    """
    from connectors.salesforce.connector import SalesforceConnector

    return SalesforceConnector(section, written, max_reasons=max_reasons, **kwargs)
