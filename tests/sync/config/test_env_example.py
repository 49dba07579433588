"""``.env.example`` documents every setting, and what it sets is valid and safe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sync.config.settings import Settings
from sync.config.sources import env_variables
from sync.config.strict import ELSEWHERE

EXAMPLE = Path(__file__).resolve().parents[3] / ".env.example"


def _assignments() -> dict[str, str]:
    """Variable as written -> the comment block above it (commented-out assignments count)."""
    out: dict[str, str] = {}
    comment: list[str] = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*(LEADPILOT_[A-Z0-9_]+)=", line)
        if match:
            out.setdefault(match.group(1), " ".join(comment))
        elif line.startswith("#"):
            comment.append(line)
        else:
            comment = []
    return out


def _documented() -> dict[str, str]:
    # LEADPILOT_X_FILE documents the secret LEADPILOT_X
    written = _assignments()
    return {**{k.removesuffix("_FILE"): v for k, v in written.items()}, **written}


def test_every_settings_variable_is_in_env_example_with_a_comment() -> None:
    documented = _documented()
    missing = [var for var in env_variables(Settings) if var not in documented]
    assert missing == [], f"add these to .env.example with a comment and a safe default: {missing}"
    uncommented = [var for var in env_variables(Settings) if not documented[var].strip()]
    assert uncommented == []


def test_env_example_names_no_variable_that_does_not_exist() -> None:
    known = set(env_variables(Settings)) | set(ELSEWHERE)  # LEADPILOT_ORGS_DIR is read before the settings
    unknown = sorted(v for v in _assignments() if v not in known and v.removesuffix("_FILE") not in known)
    assert unknown == []


def test_given_env_example_as_the_dotenv_then_it_loads_to_the_defaults(clean_env: Path) -> None:
    # The CRM has no default: the admin chooses it (given here, so the rest can be compared).
    loaded = Settings(_env_file=EXAMPLE, crm="sandbox")  # type: ignore[call-arg]
    assert loaded == Settings(_env_file=None, crm="sandbox")  # type: ignore[call-arg]
    assert not loaded.dry_run and loaded.problems() == []


@pytest.mark.parametrize("var", ["LEADPILOT_HUBSPOT__ACCESS_TOKEN", "LEADPILOT_SALESFORCE__AUTH__PASSWORD"])
def test_env_example_sets_no_secret(var: str) -> None:
    active = [line for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if line.startswith(var)]
    assert active == []
