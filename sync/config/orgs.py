"""Many CRM orgs in one deployment: one settings file per org in ``LEADPILOT_ORGS_DIR``.

The directory holds ``<org>.env`` files, each with the same variables as a one-org ``.env``
(its own ``LEADPILOT_CRM``, credentials and routing file); the file name is the org's name::

    /etc/leadpilot/orgs/acme.env      LEADPILOT_CRM=salesforce ...
    /etc/leadpilot/orgs/globex.env    LEADPILOT_CRM=hubspot ...

Variables of the process environment apply to every org (and win over the file, as they win
over ``.env``): put what the orgs share there, e.g. ``LEADPILOT_STORE_URL``. An org keeps its
files in ``<state_dir>/<org>`` and its tables in PostgreSQL schema ``org_<org>`` (a SQLite
store: a file per org), see ``Settings.for_org``.

Without ``LEADPILOT_ORGS_DIR`` there is one org, configured by ``.env``: ``org_names()`` is empty
and every command works as it always did.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from sync.config.loading import DOTENV, ConfigError, Loaded, load_checked
from sync.config.settings import Settings

ORGS_DIR_VARIABLE = "LEADPILOT_ORGS_DIR"
ORG_FILE_SUFFIX = ".env"
# A schema name, a lock key and a metric label: kept to what needs no quoting anywhere.
ORG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ORG_NAME_RULE = "a lowercase letter, then up to 39 lowercase letters, digits or underscores (e.g. acme_eu.env)"


def configured_orgs_dir(environ: Mapping[str, str] | None = None, env_file: Path | None = DOTENV) -> Path | None:
    """The orgs directory named by ``LEADPILOT_ORGS_DIR`` in the environment or in ``.env``; None: unset."""
    env = os.environ if environ is None else environ
    value = env.get(ORGS_DIR_VARIABLE)
    if value is None and env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        value = dotenv_values(env_file, encoding="utf-8").get(ORGS_DIR_VARIABLE)
    return Path(value).expanduser() if value else None


def org_names(directory: Path | None = None) -> list[str]:
    """The orgs of the deployment, sorted: the ``*.env`` file names of ``directory`` (default: the
    configured ``LEADPILOT_ORGS_DIR``) without the suffix. Empty when no orgs directory is configured.

    Raises ``ConfigError`` when the directory is missing or empty, or a file's name is no org name.
    """
    directory = directory if directory is not None else configured_orgs_dir()
    if directory is None:
        return []
    if not directory.is_dir():
        raise ConfigError([f"{ORGS_DIR_VARIABLE}={directory}: not a directory; create it with one NAME.env "
                           f"settings file per org, or unset {ORGS_DIR_VARIABLE} to run one org from .env"])
    files = sorted(path for path in directory.iterdir() if path.name.endswith(ORG_FILE_SUFFIX) and path.is_file())
    bad = [f"{path}: not an org name; an org's file is named {ORG_NAME_RULE}"
           for path in files if not ORG_NAME.match(path.name.removesuffix(ORG_FILE_SUFFIX))]
    if bad:
        raise ConfigError(bad)
    if not files:
        raise ConfigError([f"{ORGS_DIR_VARIABLE}={directory}: no org settings file in it; add one NAME.env per "
                           "org (the variables of .env.example: LEADPILOT_CRM, its credentials, ...)"])
    return [path.name.removesuffix(ORG_FILE_SUFFIX) for path in files]


def load_org(name: str, directory: Path | None = None) -> Loaded:
    """Org ``name``'s settings (``Settings.for_org``) and the warnings to print, strictly.

    Raises ``ConfigError``: no orgs directory configured, an unknown org (the known ones named),
    or problems in the org's file (each line names the file and the variable).
    """
    directory = directory if directory is not None else configured_orgs_dir()
    names = org_names(directory)
    if directory is None or not names:
        raise ConfigError([f"--org {name}: no orgs directory configured; set {ORGS_DIR_VARIABLE} to a directory "
                           "with one NAME.env settings file per org, or leave out --org to use .env"])
    if name not in names:
        raise ConfigError([f"--org {name}: unknown org; the orgs in {directory} are {', '.join(names)}"])
    path = directory / f"{name}{ORG_FILE_SUFFIX}"
    try:
        loaded = load_checked(env_file=path)
    except ConfigError as exc:
        raise ConfigError([_in_file(path, line) for line in exc.problems],
                          [_in_file(path, line) for line in exc.warnings]) from None
    return Loaded(loaded.settings.for_org(name), [_in_file(path, line) for line in loaded.warnings])


def org_settings(name: str, directory: Path | None = None) -> Settings:
    """Org ``name``'s settings; raises ``ConfigError`` as ``load_org`` does."""
    return load_org(name, directory).settings


def all_org_settings(directory: Path | None = None) -> dict[str, Settings]:
    """Every org's settings by name (empty without an orgs directory); the problems of all files
    at once in one ``ConfigError``."""
    out: dict[str, Settings] = {}
    problems: list[str] = []
    for name in org_names(directory):
        try:
            out[name] = org_settings(name, directory)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return out


def _in_file(path: Path, line: str) -> str:
    """The problem line naming ``path`` (the strict checks name the file of an unknown variable already)."""
    return line if str(path) in line else f"{path}: {line}"
