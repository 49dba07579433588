"""Load the settings the way every command does: strictly, with every problem in words.

``load_checked()`` reads the environment and ``.env`` and either returns the ``Settings``
(with warnings to print) or raises ``ConfigError`` holding one line per problem: unknown
``LEADPILOT_*`` variables ("did you mean …"), invalid values, unreadable ``*_FILE`` secrets,
values that are not JSON, and — when nothing is configured at all — what to set first.
Commands print the lines and exit 2; none of them shows a traceback for a settings error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync.config.settings import DEPRECATED_VALUES, Settings
from sync.config.strict import read_sources, secret_and_file_warnings, unknown_variables

DOTENV = Path(".env")
NOTHING_CONFIGURED = (
    "no configuration found (no LEADPILOT_* variable in the environment or in .env): copy .env.example to .env "
    "and set LEADPILOT_CRM (salesforce or hubspot) and its credentials, then run `leadpilot check`"
)
CRM_NOT_SET = (
    "LEADPILOT_CRM: not set: leadpilot needs to be told which CRM to connect to (salesforce | hubspot; "
    "sandbox is the local simulated CRM and must be chosen explicitly); e.g. LEADPILOT_CRM=salesforce"
)


class ConfigError(ValueError):
    """The configuration cannot be used. ``problems``: one line each, naming the variable."""

    def __init__(self, problems: list[str], warnings: list[str] | None = None) -> None:
        self.problems = problems
        self.warnings = warnings or []
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Loaded:
    """Valid settings and the warnings to print before using them."""

    settings: Settings
    warnings: list[str] = field(default_factory=list)


def load_checked(env_file: Path | None = DOTENV, **overrides: Any) -> Loaded:
    """Settings from the process environment and ``env_file``, strictly.

    Raises ``ConfigError`` listing every problem at once (so one ``leadpilot check`` shows all).
    """
    from sync.config.problems import describe_settings_error

    sources = read_sources(os.environ, env_file)
    warnings = secret_and_file_warnings(Settings, sources) + deprecated_value_warnings(sources)
    problems = unknown_variables(Settings, sources)
    reported = {_variable(line) for line in problems}
    settings: Settings | None = None
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValueError as exc:  # ValidationError, SettingsError (not JSON), SecretFileError
        problems += [line for line in describe_settings_error(exc, env_file) if _variable(line) not in reported]
    if not any(sources.values()) and "crm" not in overrides:
        problems = [NOTHING_CONFIGURED, *(line for line in problems if not line.startswith("LEADPILOT_CRM:"))]
    if problems or settings is None:
        raise ConfigError(list(dict.fromkeys(problems)), warnings)
    return Loaded(settings, warnings)


def deprecated_value_warnings(sources: dict[str, dict[str, str | None]]) -> list[str]:
    """A warning for each variable set to an old spelling that is still accepted (``DEPRECATED_VALUES``)."""
    out = []
    for origin, variables in sources.items():
        for name, value in variables.items():
            new = DEPRECATED_VALUES.get(name.upper(), {}).get(value or "")
            if new is not None:
                out.append(f"warning: {name.upper()}={value} ({origin}) is deprecated and means {new}; "
                           f"set {name.upper()}={new}")
    return out


def _variable(line: str) -> str:
    """The variable a problem line names (its first word, without the origin or the colon)."""
    return line.split(" ", 1)[0].split(":", 1)[0].upper()
