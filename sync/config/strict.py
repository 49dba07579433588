"""Strict configuration: every ``LEADPILOT_*`` variable must be one a setting reads.

pydantic-settings ignores environment variables it does not know, so a typo silently does
the wrong thing (``LEADPILOT_CMR=salesforce`` leaves the CRM unset; ``LEADPILOT_DRYRUN=true``
runs live). ``unknown_variables`` names each such variable, in the environment or in
``.env``, with the nearest real setting::

    LEADPILOT_CMR (environment): no such setting; did you mean LEADPILOT_CRM?

Known names: every variable of the settings root (``sources.env_variables``), each section's
own name (a whole section may be given as JSON), the ``_FILE`` variant of every secret, keys
under a mapping setting (``LEADPILOT_SALESFORCE__SOURCE_FIELDS__INDUSTRY``) and the few
variables read outside the settings (``ELSEWHERE``).
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from sync.config.sources import (
    ENV_PREFIX,
    FILE_SUFFIX,
    NESTED,
    env_name,
    env_variables,
    secret_paths,
    submodels,
    type_args,
)

# LEADPILOT_ variables read directly (os.environ), not through the settings: name -> reader.
ELSEWHERE: dict[str, str] = {
    "LEADPILOT_TEST_PG_URL": "tests/conftest.py (the PostgreSQL the test suite uses)",
    "LEADPILOT_ORGS_DIR": "sync/config/orgs.py (one settings file per org)",
    "LEADPILOT_SOAK": "tests/e2e/conftest.py (the long crash and soak tests)",
}


def known_variables(root: type[BaseModel]) -> set[str]:
    """Every ``LEADPILOT_*`` name that something reads (exact names; see ``mapping_prefixes``)."""
    known = set(env_variables(root)) | set(ELSEWHERE)
    known |= {env_name(path) + FILE_SUFFIX for path in secret_paths(root)}
    known |= {env_name(path) for path in _section_paths(root)}
    return known


def mapping_prefixes(root: type[BaseModel]) -> set[str]:
    """Variables of mapping settings: ``<VAR>__<KEY>`` sets one key of it (pydantic-settings' nesting)."""
    return {env_name(path) + NESTED for path, field in _leaf_fields(root)
            if any(typing.get_origin(t) is dict for t in type_args(field.annotation))}


def unknown_variables(root: type[BaseModel], sources: Mapping[str, Mapping[str, str | None]]) -> list[str]:
    """One line per ``LEADPILOT_*`` variable no setting reads. ``sources``: where it was found
    (``"environment"``, ``".env"``) -> its variables. Names are compared case-insensitively,
    as pydantic-settings reads them."""
    known = known_variables(root)
    prefixes = tuple(mapping_prefixes(root))
    out: list[str] = []
    seen: set[str] = set()
    for origin, variables in sources.items():
        for raw in variables:
            name = raw.upper()
            if not name.startswith(ENV_PREFIX) or name in known or name.startswith(prefixes) or name in seen:
                continue
            seen.add(name)
            out.append(f"{raw} ({origin}): no such setting; {suggest(name, known)}")
    return out


def suggest(name: str, known: set[str]) -> str:
    """``did you mean X?`` with the nearest known variable, or where the settings are listed."""
    # Compare without the shared prefix: it would make every name look alike.
    stems = {k.removeprefix(ENV_PREFIX): k for k in known if k not in ELSEWHERE}
    stem = name.removeprefix(ENV_PREFIX)
    match = difflib.get_close_matches(stem, list(stems), n=1, cutoff=0.6)
    if not match:
        # A section typo (LEADPILOT_ROUTING__EXPLORATON): the nearest setting within the section.
        head, _, tail = stem.rpartition(NESTED)
        inside = [s for s in stems if head and s.startswith(head + NESTED)]
        match = difflib.get_close_matches(stem, inside, n=1, cutoff=0.0) if tail and inside else []
    if match:
        return f"did you mean {stems[match[0]]}?"
    return "every setting is listed in .env.example"


def secret_and_file_warnings(root: type[BaseModel], sources: Mapping[str, Mapping[str, str | None]]) -> list[str]:
    """A warning for each secret set both directly and through its ``_FILE`` (the direct value wins)."""
    present = {name.upper() for variables in sources.values() for name, value in variables.items() if value}
    out = []
    for path in sorted(secret_paths(root)):
        var = env_name(path)
        if var in present and var + FILE_SUFFIX in present:
            out.append(
                f"warning: {var} and {var}{FILE_SUFFIX} are both set: {var} wins and the file is "
                f"ignored; unset one of them"
            )
    return out


def read_sources(env: Mapping[str, str], env_file: Path | None) -> dict[str, dict[str, str | None]]:
    """The ``LEADPILOT_*`` variables of the environment and of the ``.env`` file, by origin."""
    out: dict[str, dict[str, str | None]] = {
        "environment": {k: v for k, v in env.items() if k.upper().startswith(ENV_PREFIX)}
    }
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        values = dotenv_values(env_file, encoding="utf-8")
        out[str(env_file)] = {k: v for k, v in values.items() if k.upper().startswith(ENV_PREFIX)}
    return out


def _section_paths(root: type[BaseModel], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, field in root.model_fields.items():
        for sub in submodels(field.annotation):
            out.append((*path, name))
            out += _section_paths(sub, (*path, name))
    return out


def _leaf_fields(root: type[BaseModel], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], typing.Any]]:
    out: list[tuple[tuple[str, ...], typing.Any]] = []
    for name, field in root.model_fields.items():
        members = submodels(field.annotation)
        if not members:
            out.append(((*path, name), field))
        for sub in members:
            out += _leaf_fields(sub, (*path, name))
    return out
