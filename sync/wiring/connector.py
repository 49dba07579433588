"""``make_connector(settings)``: the one place a Connector is built from settings.

``settings.crm`` (or ``crm``) names the CRM; ``connectors.registry`` says which package builds
its connector and which attributes of the settings root hold its section and written-field
names. This module adds what only the daemon knows: the section's environment-variable
prefix and the files its secret ``*_FILE`` variables name (re-read by the connector while
running, e.g. a rotated HubSpot token), so connectors never read ``LEADPILOT_`` variables.

For ``"sandbox"`` the caller fills ``settings.salesforce`` (``login_url``/``instance_url`` and
``ca_bundle`` pointing at the sandbox) or ``settings.hubspot`` (``host``, ``ca_bundle``) and
passes ``crm="salesforce"|"hubspot"``; without it the first CRM whose section has credentials
is used (Salesforce when its auth is configured), else ``registry.SANDBOX_FALLBACK``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connectors.base import Connector
from connectors.registry import CRMS, SANDBOX_FALLBACK
from sync.config.settings import Settings
from sync.config.sources import FILE_SUFFIX, NESTED, env_name, secret_paths

SANDBOX = "sandbox"


def secret_files(section_name: str, section: BaseModel) -> dict[str, str]:
    """Secret field path (``"access_token"``, ``"auth.password"``) → the file its ``*_FILE``
    variable names in the environment (``LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE``), for those set.

    A secret also set directly (environment or ``.env``) is left out: the direct value wins in
    the settings (``leadpilot`` warns about both being set), so the connector must not re-read
    the file instead."""
    from sync.config.strict import read_sources

    direct = {name.upper() for found in read_sources(os.environ, Path(".env")).values()
              for name, value in found.items() if value}
    out: dict[str, str] = {}
    for path in sorted(secret_paths(type(section))):
        file = os.environ.get(env_name((section_name, *path)) + FILE_SUFFIX)
        if file and env_name((section_name, *path)) not in direct:
            out[".".join(path)] = file
    return out


def crm_name(settings: Settings, crm: str | None = None) -> str:
    """The CRM to connect to: ``crm`` or ``settings.crm``, with ``"sandbox"`` resolved to a dialect."""
    which = crm or settings.crm
    if which == SANDBOX:
        configured = (name for name in CRMS if settings.crm_section(name).has_credentials)
        which = next(configured, SANDBOX_FALLBACK)
    return which


_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def routing_fields(settings: Settings) -> tuple[str, ...]:
    """The other CRM fields the routing file's territories and rules name (``fields = { Region__c
    = [...] }``), for the connector to pull with each lead. The file is read once, when the
    connector is built: a field named later is pulled after a restart. A file that is missing or
    does not validate names none here (routing reports its problems itself); a name that is not a
    plain field name never reaches a query."""
    from sync.config.routing import RoutingError, load_routing

    if not settings.routing.file.is_file():
        return ()
    try:
        config = load_routing(settings.routing.file)
    except RoutingError:
        return ()
    preds = [*config.territories.values(), *(r.when for r in config.rules if r.when is not None)]
    names = (name for p in preds for name in (p.fields or {}))
    return tuple(dict.fromkeys(n for n in names if _FIELD_NAME.fullmatch(n)))


def make_connector(settings: Settings, crm: str | None = None, **kwargs: Any) -> Connector:
    """The configured connector. ``kwargs`` (sleep, now, rng, policy) are passed through (tests)."""
    kwargs.setdefault("routing_fields", routing_fields(settings))
    which = crm_name(settings, crm)
    entry = CRMS.get(which)
    if entry is None:
        raise ValueError(f"unknown CRM {which!r}: set {env_name(['crm'])} to {', '.join(CRMS)} or {SANDBOX}")
    section = getattr(settings, entry.section)  # a pydantic model: its secret fields name *_FILE variables
    return entry.load()(
        section, getattr(settings, entry.written),
        env_prefix=env_name([entry.section]) + NESTED,
        max_reasons=settings.scoring.max_reasons_chars,
        secret_files=secret_files(entry.section, section),
        **kwargs,
    )
