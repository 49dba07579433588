"""Settings errors in words an admin can act on: one line per invalid value, naming the
environment variable, what is wrong and a valid example::

    LEADPILOT_CRM: got 'salesforc': Input should be 'salesforce', 'hubspot' or 'sandbox'; e.g. LEADPILOT_CRM=salesforce

Secret values are never echoed.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import SettingsError

from sync.config.loading import CRM_NOT_SET, ConfigError
from sync.config.settings import Settings
from sync.config.sources import NESTED, SecretFileError, env_name, submodels, type_args
from sync.config.strict import known_variables, suggest

# Examples where neither the default nor the type says enough.
EXAMPLES: dict[str, str] = {
    "LEADPILOT_SALESFORCE__AUTH__USERNAME": "integration@acme.com",
    "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": "3MVG9...",
    "LEADPILOT_SALESFORCE__AUTH__PRIVATE_KEY_FILE": "/etc/leadpilot/salesforce.key",
    "LEADPILOT_SALESFORCE__AUTH__INSTANCE_URL": "https://acme.my.salesforce.com",
    "LEADPILOT_SALESFORCE__SOURCE_FIELDS": '{"industry": "Industry__c"}',
    "LEADPILOT_HUBSPOT__SOURCE_PROPERTIES": '{"industry": "industry_segment"}',
    "LEADPILOT_SCORING__GRADE_THRESHOLDS": "[0.5, 0.25, 0.1]",
    "LEADPILOT_STORE_URL": "postgresql://leadpilot@db:5432/leadpilot",
    "LEADPILOT_ROUTING__REASSIGN_FROM": '["00G5g000001QueueA"]',
}


def describe_settings_error(exc: Exception, env_file: Path | None = Path(".env")) -> list[str]:
    """One line per problem in ``exc`` (raised by ``Settings()`` or ``load_checked``), naming the
    variable. ``env_file``: the ``.env`` the settings were read from (for values that are not JSON)."""
    if isinstance(exc, ConfigError):
        return exc.problems
    if isinstance(exc, ValidationError):
        return list(dict.fromkeys(_describe(error) for error in exc.errors()))
    if isinstance(exc, SecretFileError):
        return [str(exc)]
    if isinstance(exc, SettingsError):
        return _json_problems(env_file) or [f"LEADPILOT_*: {exc}"]
    raise exc


def _describe(error: Any) -> str:
    names, field, tag_of = _resolve(tuple(error["loc"]))
    var = env_name(names) if names else "LEADPILOT_*"
    if names == ["crm"] and (error["type"] == "missing" or error.get("input") == ""):
        return CRM_NOT_SET
    if error["type"] == "extra_forbidden":
        # Reported against the variable itself, not its section (nor the auth mode's tag).
        rest = [str(p) for p in error["loc"][len(names) + (1 if tag_of else 0) :]]
        var = env_name([*names, *rest])
        if tag_of is not None and var in known_variables(Settings):
            kind = env_name([*names, "kind"])
            return f"{var}: not read with this {kind} (got {error['loc'][len(names)]!r}); unset it or change {kind}"
        return f"{var}: no such setting; {suggest(var, known_variables(Settings))}"
    secret = field is not None and SecretStr in type_args(field.annotation)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        var += NESTED + "KIND"
        tags = "|".join(_tags(tag_of))
        return f"{var}: not one of {tags} (got {error.get('input', {}).get('kind')!r}); e.g. {var}={_tags(tag_of)[0]}"
    extra = [str(p) for p in error["loc"][len(names) + (1 if tag_of else 0) :] if isinstance(p, int)]
    if extra:
        message += f" (item {', '.join(extra)})"
    got = error.get("input")
    if error["type"] != "missing" and not secret and isinstance(got, str | int | float | bool):
        message = f"got {got!r}: {message}"
    if "e.g." in message or field is None:
        return f"{var}: {message}"
    value = example(var, field, got)
    return f"{var}: {message}; e.g. {var}={_quoted(value)}"


def _quoted(value: str) -> str:
    # .env and shell lines need quotes around spaces
    return f"'{value}'" if " " in value and not value.startswith(("[", "{", "<")) else value


def _resolve(loc: tuple[Any, ...]) -> tuple[list[str], FieldInfo | None, Any]:
    """Field names along ``loc`` (discriminator tags skipped), the last field and the union it is in."""
    model: type[BaseModel] | None = Settings
    names: list[str] = []
    field: FieldInfo | None = None
    union_annotation: Any = None
    index = 0
    while index < len(loc) and model is not None and loc[index] in model.model_fields:
        field = model.model_fields[loc[index]]
        names.append(str(loc[index]))
        index += 1
        choices = submodels(field.annotation)
        model = choices[0] if len(choices) == 1 else None
        if len(choices) > 1:
            union_annotation = field.annotation
            tags = {_tag(c): c for c in choices}
            if index < len(loc) and loc[index] in tags:
                model = tags[loc[index]]
                index += 1
            elif index >= len(loc):
                return names, field, union_annotation
    return names, field, union_annotation if union_annotation is not None and index > len(names) else None


def _tag(model: type[BaseModel]) -> str:
    return str(model.model_fields["kind"].default) if "kind" in model.model_fields else model.__name__


def _tags(annotation: Any) -> list[str]:
    return [_tag(m) for m in submodels(annotation)]


def example(var: str, field: FieldInfo, bad: Any = None) -> str:
    """A valid value for ``var`` (a field of the settings) as it would be written in ``.env``."""
    if var in EXAMPLES:
        return EXAMPLES[var]
    leaves = type_args(field.annotation)
    for leaf in leaves:
        if typing.get_origin(leaf) is typing.Literal:
            choices = [str(c) for c in typing.get_args(leaf)]
            return next((c for c in choices if c != bad), choices[0])
    default = field.default
    if default is not PydanticUndefined and default is not None and not isinstance(default, SecretStr):
        if isinstance(default, tuple | list | dict):
            return json.dumps(list(default) if isinstance(default, tuple) else default)
        if isinstance(default, bool):
            return str(default).lower()
        if default != "":
            return str(default)
    if SecretStr in leaves:
        return f"<secret> (or {var}_FILE=/run/credentials/leadpilot.service/{var.lower().split(NESTED)[-1]})"
    if bool in leaves:
        return "true"
    if int in leaves or float in leaves:
        return "1"
    if Path in leaves:
        return f"/etc/leadpilot/{var.lower().split(NESTED)[-1]}"
    return "<text>"


def _json_problems(env_file: Path | None) -> list[str]:
    """Variables holding a list/dict/model setting whose value is not JSON (pydantic-settings only
    says which top-level field failed)."""
    from dotenv import dotenv_values

    has_file = env_file is not None and env_file.is_file()
    env = {k.upper(): v for k, v in dotenv_values(env_file).items() if v} if has_file else {}
    env.update(os.environ)
    out = []
    for var, value in sorted(env.items()):
        names, field, _ = _resolve(tuple(var.removeprefix("LEADPILOT_").lower().split(NESTED)))
        if not var.startswith("LEADPILOT_") or field is None or env_name(names) != var:
            continue
        if not any(typing.get_origin(t) in (tuple, list, dict) for t in type_args(field.annotation)):
            continue
        try:
            json.loads(value or "")
        except ValueError:
            out.append(
                f"{var}: not JSON (lists and mappings are written as JSON); e.g. {var}={example(var, field)}"
            )
    return out
