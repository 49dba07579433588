"""Where the HubSpot connector gets its private-app token: the setting, or a file re-read on each 401.

A token kept in a file (systemd credentials, docker secrets) may be rotated while the daemon
runs; the connector asks the provider again on a 401, so the provider reads the file each
time. The caller passes the file's path and the variable prefix of the HubSpot settings
section (``LEADPILOT_HUBSPOT__``) so messages name the variables an admin sets; connectors
never read the environment themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from connectors.hubspot.settings import HubSpotSettings


def token_provider(settings: HubSpotSettings, token_file: str | None, env_prefix: str) -> Callable[[], str]:
    """The current token: ``token_file``'s content (read at each call) or the configured token.

    Raises ``ValueError`` naming ``{env_prefix}ACCESS_TOKEN`` when neither is given, and the
    ``…_FILE`` variable when the file cannot be read.
    """
    variable, file_variable = f"{env_prefix}ACCESS_TOKEN", f"{env_prefix}ACCESS_TOKEN_FILE"
    static = settings.access_token.get_secret_value() if settings.access_token else None
    if not token_file:
        if static is None:
            raise ValueError(f"HubSpot access token is not set: {variable} or {file_variable}")
        return lambda: static
    path = token_file

    def read() -> str:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{file_variable}: cannot read {path!r}: {exc.strerror}") from exc

    return read
