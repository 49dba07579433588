"""CRM name → the package building its connector, loaded lazily. Adding a CRM takes three steps:
1. a subpackage ``connectors/<crm>/`` with its settings (a section meeting
   ``connectors.settings.CRMSection``), mapping, errors (an ``ErrorTable``) and connector;
   its ``__init__`` exposes ``connect`` (see ``Connect``), importing the connector only when called;
2. one line in ``CRMS`` below; 3. one settings section (+ its written names) in ``sync.config.settings``.

A CRM's connector module and client library are imported only when its connector is built
(``importlib`` here, a function-level import in ``connect``), so a daemon speaking one CRM never
loads the other's client library. The registry reads no settings
root itself: an entry names the root's attributes (``section``, ``written``) and the caller
(``sync.wiring.connector.make_connector``) looks them up.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.base import Connector


class Connect(Protocol):
    """A CRM package's ``connect``: its settings section and written names → a ``Connector``.

    ``env_prefix``: the section's environment-variable prefix, for messages
    (``LEADPILOT_HUBSPOT__``); ``secret_files``: secret field path (``"access_token"``,
    ``"auth.password"``) → the file a ``*_FILE`` variable names, for secrets re-read while
    running; ``kwargs``: sleep, now, rng, policy … (tests, benchmarks).
    """

    def __call__(
        self,
        section: Any,
        written: Any,
        *,
        env_prefix: str,
        max_reasons: int,
        secret_files: Mapping[str, str],
        **kwargs: Any,
    ) -> Connector: ...


@dataclass(frozen=True, slots=True)
class CRMEntry:
    """One CRM: the package exposing ``connect``, and the settings root's attributes holding
    its section (``section``) and the names of the fields leadpilot writes (``written``);
    ``loggers``: its client libraries' loggers, whose debug output echoes headers with tokens."""

    module: str
    section: str
    written: str
    loggers: tuple[str, ...] = ()

    def load(self) -> Connect:
        """The package's ``connect``; its connector and client library load when ``connect`` runs."""
        connect: Connect = importlib.import_module(self.module).connect
        return connect


CRMS: dict[str, CRMEntry] = {
    "salesforce": CRMEntry(module="connectors.salesforce", section="salesforce", written="fields",
                           loggers=("simple_salesforce", "zeep")),
    "hubspot": CRMEntry(module="connectors.hubspot", section="hubspot", written="hubspot_properties",
                        loggers=("hubspot",)),
}
# ``crm = "sandbox"``: the first CRM (in ``CRMS`` order) whose section has credentials; with none,
# this one, whose ``connect`` says at once which credential is missing.
SANDBOX_FALLBACK = "hubspot"


class UnknownCRMError(ValueError):
    """A CRM name the registry does not know."""


def entry(name: str) -> CRMEntry:
    """The registry entry for ``name``; ``UnknownCRMError`` naming the known CRMs otherwise."""
    try:
        return CRMS[name]
    except KeyError:
        raise UnknownCRMError(f"unknown CRM {name!r}: leadpilot speaks {', '.join(CRMS)}") from None


def connector_for(name: str) -> Connect:
    """``connect`` of the CRM called ``name``, its package imported on first use."""
    return entry(name).load()
