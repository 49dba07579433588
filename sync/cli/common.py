"""What every command does the same way: load the settings, open the store, and fail in words.

Exit codes shared by the commands (the systemd unit relies on them):

- ``CONFIG_ERROR`` (2): the configuration is invalid; one line per problem on stderr, naming
  the variable. Restarting cannot help.
- ``UNAVAILABLE`` (1): the store or the CRM cannot be reached or refuses us.
- ``TEMPORARY`` (75, sysexits' EX_TEMPFAIL): the CRM's API limit is spent at start-up and did
  not recover within the wait; the unit does not restart on it (``RestartPreventExitStatus=75``),
  since a restart loop would spend the budget further.
- ``HELD`` (73): another ``leadpilot run`` / ``sync --once`` holds the state store (its host, pid
  and start time are printed). The unit restarts on it after ``RestartSec``, so a second
  machine's unit waits as a standby and takes over once the holder is gone.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, NoReturn

import typer

from sync.config.settings import Settings

CONFIG_ERROR = 2
UNAVAILABLE = 1
TEMPORARY = 75
HELD = 73
FIX_HINT = "fix the settings (see .env.example), then try again; `leadpilot check` lists every problem"


def load_settings_or_exit(**overrides: Any) -> Settings:
    """The settings, strictly; warnings printed; any problem printed one per line, exit 2."""
    from sync.config.loading import ConfigError, load_checked

    try:
        loaded = load_checked(**overrides)
    except ConfigError as exc:
        for line in exc.warnings:
            typer.echo(line, err=True)
        config_failure(exc.problems)
    for line in loaded.warnings:
        typer.echo(line, err=True)
    return loaded.settings


ORG_OPTION = typer.Option(None, "--org", metavar="NAME",
                          help="The org: its settings file NAME.env in LEADPILOT_ORGS_DIR (default: the only org).")
ALL_ORGS_OPTION = typer.Option(False, "--all", help="Every org in LEADPILOT_ORGS_DIR, one after the other.")


def org_settings_or_exit(org: str | None, all_orgs: bool) -> list[Settings]:
    """The settings of the orgs a command was asked for (``--org NAME`` / ``--all``), warnings printed;
    any problem printed one per line, exit 2.

    Without ``LEADPILOT_ORGS_DIR``: the one org of ``.env`` (``--all`` is that org; ``--org`` is an
    error). With it: ``--org NAME`` that org, ``--all`` every org, neither the only org there is
    (several: name one, or say ``--all``)."""
    from sync.config.loading import ConfigError
    from sync.config.orgs import configured_orgs_dir, load_org, org_names

    if org is not None and all_orgs:
        config_failure(["--org and --all: give one of them (--org NAME for one org, --all for every org)"])
    try:
        names = org_names()
        if not names and org is None:
            return [load_settings_or_exit()]
        if org is None and not all_orgs and len(names) > 1:
            config_failure([f"{configured_orgs_dir()} holds several orgs ({', '.join(names)}): "
                            "name one with --org NAME, or give --all"])
        chosen = [org] if org is not None else names
        loaded = [load_org(name) for name in chosen]
    except ConfigError as exc:
        for line in exc.warnings:
            typer.echo(line, err=True)
        config_failure(exc.problems)
    for one in loaded:
        for line in one.warnings:
            typer.echo(line, err=True)
    return [one.settings for one in loaded]


def one_org_settings_or_exit(org: str | None, **overrides: Any) -> Settings:
    """The settings of one org, for a command that works on one: ``--org NAME``, or the only org
    of LEADPILOT_ORGS_DIR, or without that directory ``.env`` (with ``overrides``); any problem
    printed one per line, exit 2."""
    from sync.config.orgs import configured_orgs_dir

    if org is None and configured_orgs_dir() is None:
        return load_settings_or_exit(**overrides)
    [settings] = org_settings_or_exit(org, False)
    return settings.model_copy(update=overrides) if overrides else settings


def config_failure(problems: list[str]) -> NoReturn:
    """Print the problems and the hint, exit ``CONFIG_ERROR``."""
    for line in problems:
        typer.echo(line, err=True)
    typer.echo(FIX_HINT, err=True)
    raise typer.Exit(CONFIG_ERROR)


def store_failure_message(settings: Settings, exc: BaseException) -> str:
    """One line for a store that cannot be opened: the redacted URL and the driver's first line,
    with any piece of the password removed (a driver may echo a host or a database name)."""
    from sync.config.urls import redact_url, scrub

    url = settings.resolved_store_url
    cause = exc.__cause__ if exc.__cause__ is not None else exc  # Store.open wraps the driver's error
    first = (str(getattr(cause, "orig", None) or cause).strip().splitlines() or [type(exc).__name__])[0]
    return f"LEADPILOT_STORE_URL: cannot connect to the store at {redact_url(url)}: {scrub(first, url)}"


def hold_store_or_exit(settings: Settings, command: str, *, shared: bool = False,
                       lock: str = "store") -> AbstractContextManager[Any]:
    """The store's single-instance lock (or its ``lock``) for ``command`` (``sync.ops.instance``) as a context that
    releases it (the process's exit releases it anyway); or one line naming the holder and exit
    ``HELD`` (``UNAVAILABLE`` when the store cannot be reached to take it)."""
    import sqlalchemy as sa

    from sync.ops.instance import StoreHeld, acquire
    from sync.store import StoreError

    try:
        guard = acquire(settings.resolved_store_url, command, shared=shared, lock=lock)
    except StoreHeld as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(HELD) from None
    except (StoreError, sa.exc.SQLAlchemyError, OSError) as exc:
        typer.echo(f"cannot start: {store_failure_message(settings, exc)}", err=True)
        raise typer.Exit(UNAVAILABLE) from None
    return guard if guard is not None else nullcontext()


def open_store_or_exit(settings: Settings) -> Any:
    """``open_store(settings)``, or one line naming the store and exit ``UNAVAILABLE``."""
    import sqlalchemy as sa

    from sync.store import StoreError, open_store

    try:
        return open_store(settings)
    except (StoreError, sa.exc.SQLAlchemyError, OSError) as exc:
        typer.echo(store_failure_message(settings, exc), err=True)
        raise typer.Exit(UNAVAILABLE) from None
