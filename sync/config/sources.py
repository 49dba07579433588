"""Settings sources for secrets kept in files (systemd credentials, docker secrets).

``LEADPILOT_HUBSPOT__ACCESS_TOKEN_FILE=/run/credentials/leadpilot.service/hubspot`` supplies
``LEADPILOT_HUBSPOT__ACCESS_TOKEN``. Only ``SecretStr`` fields take a ``_FILE`` variant, so a
plain setting whose name ends in ``_FILE`` (``LEADPILOT_ROUTING__FILE``) is never read as one.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

ENV_PREFIX = "LEADPILOT_"
NESTED = "__"
FILE_SUFFIX = "_FILE"


class SecretFileError(ValueError):
    """A ``*_FILE`` variable names a file that cannot be read."""


def type_args(annotation: Any) -> list[Any]:
    """The leaf types of an annotation, through ``Optional``, unions and ``Annotated``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_args(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [leaf for arg in typing.get_args(annotation) for leaf in type_args(arg)]
    return [annotation]


def submodels(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models among an annotation's leaf types (several for a discriminated union)."""
    return [t for t in type_args(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]


def secret_paths(model: type[BaseModel]) -> set[tuple[str, ...]]:
    """Field paths (``("hubspot", "access_token")``) of every ``SecretStr`` setting."""
    out: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        if SecretStr in type_args(field.annotation):
            out.add((name,))
        for sub in submodels(field.annotation):
            out |= {(name, *path) for path in secret_paths(sub)}
    return out


def env_name(path: tuple[str, ...] | list[str]) -> str:
    """The environment variable of a field path: ``LEADPILOT_HUBSPOT__ACCESS_TOKEN``."""
    return ENV_PREFIX + NESTED.join(path).upper()


class FileSecretsSource(PydanticBaseSettingsSource):
    """Reads each ``LEADPILOT_<SECRET>_FILE`` from the environment or ``.env`` (lowest precedence)."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: Mapping[str, str | None]) -> None:
        super().__init__(settings_cls)
        self._dotenv = {k.upper(): v for k, v in dotenv.items() if v}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = {**self._dotenv, **os.environ}
        out: dict[str, Any] = {}
        for path in sorted(secret_paths(self.settings_cls)):
            key = env_name(path) + FILE_SUFFIX
            if not env.get(key):
                continue
            try:
                value = Path(env[key]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SecretFileError(
                    f"{key}: cannot read {env[key]!r} ({exc.strerror}); "
                    f"e.g. {key}=/run/credentials/leadpilot.service/{path[-1]}"
                ) from exc
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        return out


class WithoutSecretFileKeys(PydanticBaseSettingsSource):
    """Wraps the env/.env source, dropping ``<secret>_file`` keys it would pass to strict models."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = self._inner()
        for path in secret_paths(self.settings_cls):
            node: Any = data
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(path[-1] + FILE_SUFFIX.lower(), None)
        return data


def env_variables(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[str]:
    """Every environment variable a settings model reads, in declaration order (for docs and tests).

    A discriminated union contributes its ``__KIND`` variable and each member's fields once.
    """
    out: list[str] = []
    for name, field in model.model_fields.items():
        members = submodels(field.annotation)
        if not members:
            out.append(env_name((*path, name)))
            continue
        for member in members:
            for var in env_variables(member, (*path, name)):
                if var not in out:
                    out.append(var)
    return out
