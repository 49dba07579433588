"""``leadpilot check``: validate the settings and the routing file, then try the store and the CRM.

Exit codes: 0 all good; 2 an invalid value (each printed as one line naming the variable or
``file:line``, what is wrong and a valid example); 1 valid configuration, but the store or the
CRM cannot be reached or refuses us.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from sync.cli.common import ALL_ORGS_OPTION, ORG_OPTION

INVALID = 2
UNREACHABLE = 1
ROUTING_VAR = "LEADPILOT_ROUTING__FILE"


def check(
    offline: bool = typer.Option(
        False, "--offline", help="Only validate; do not open the store or call the CRM."
    ),
    routing_file: Path | None = typer.Option(
        None, "--routing", help=f"Routing file to validate instead of {ROUTING_VAR}."
    ),
    env_file: Path = typer.Option(
        Path(".env"), "--env-file", help="The dotenv file to read besides the environment (e.g. the service's)."
    ),
    org: str | None = ORG_OPTION,
    all_orgs: bool = ALL_ORGS_OPTION,
) -> None:
    """Validate settings and the routing file; connect to the store and the CRM, print the API budget.

    Every invalid value is one line naming the variable (or file:line), what is wrong and a valid
    example; exit code 2. Exit code 1: the store or the CRM cannot be reached. With
    LEADPILOT_ORGS_DIR, ``--org NAME`` checks that org's file and ``--all`` every org's (the worst
    exit code of them).
    """
    from sync.config.loading import ConfigError, load_checked
    from sync.config.orgs import load_org, org_names

    problems: list[str] = []
    if env_file != Path(".env") and not env_file.is_file():
        problems.append(f"--env-file: {str(env_file)!r} is not a readable file; e.g. --env-file /etc/leadpilot/leadpilot.env")
    if org is None and not all_orgs:
        raise typer.Exit(code=_check_one(lambda: load_checked(env_file), problems, routing_file, offline))
    try:
        names = [org] if org is not None else org_names()
    except ConfigError as exc:
        names, problems = [], problems + exc.problems
    codes = [_check_one(lambda: load_checked(env_file), problems, routing_file, offline)] if not names else []
    for name in names:
        typer.echo(f"org {name}:")
        codes.append(_check_one(lambda name=name: load_org(name), list(problems), routing_file, offline))  # type: ignore[misc]
    raise typer.Exit(code=max(codes))


def _check_one(load: Callable[[], Any], problems: list[str], routing_file: Path | None, offline: bool) -> int:
    """Check one org's settings (``load()``: its ``Loaded``); print what is wrong; the exit code."""
    from sync.config.loading import ConfigError

    settings: Any = None
    try:
        loaded = load()
    except ConfigError as exc:
        problems += exc.problems
        warnings = exc.warnings
    else:
        settings, warnings = loaded.settings, loaded.warnings
    for line in warnings:
        typer.echo(line, err=True)
    if settings is not None:
        problems += settings.problems() + _store_location_problems(settings)
        _echo_summary(settings)
    path, explicit = _routing_path(settings, routing_file)
    problems += _check_routing(path, explicit)
    if problems:
        for line in problems:
            typer.echo(line, err=True)
        typer.echo(f"{len(problems)} problem(s): fix them and run `leadpilot check` again.", err=True)
        return INVALID
    if offline:
        typer.echo("configuration valid (offline: store and CRM not contacted)")
        return 0
    reachable = _check_store(settings) and _check_crm(settings, path if path.exists() else None)
    if not reachable:
        return UNREACHABLE
    typer.echo("all checks passed")
    return 0


def _echo_summary(settings: Any) -> None:
    from sync.config.urls import redact_url

    org = f"org={settings.org} " if settings.org else ""
    typer.echo(
        f"settings: {org}crm={settings.crm} store={redact_url(settings.resolved_store_url)} "
        f"policy={settings.routing.policy} dry_run={settings.dry_run} shadow={settings.shadow}"
    )


def _store_location_problems(settings: Any) -> list[str]:
    """A SQLite store named by ``LEADPILOT_STORE_URL`` must be in a directory that exists: the
    daemon would otherwise create the directory and start an empty store there (a typo in the
    path silently loses the routing state)."""
    from sqlalchemy.engine import make_url

    if settings.store_url is None or not settings.store_url.get_secret_value():
        return []  # the default, in LEADPILOT_STATE_DIR: created at the first start (StateDirectory=)
    try:
        url = make_url(settings.store_url.get_secret_value())
    except Exception:  # noqa: BLE001 - an unparsable URL is reported when the store is opened
        return []
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return []
    directory = Path(database).expanduser().parent
    if directory.is_dir():
        return []
    return [
        f"LEADPILOT_STORE_URL: the directory {str(directory)!r} of the SQLite store does not exist; "
        f"create it (mkdir -p {directory}, writable by the user leadpilot runs as) or correct the path; "
        f"e.g. LEADPILOT_STORE_URL=sqlite:////var/lib/leadpilot/leadpilot.db"
    ]


def _routing_path(settings: Any, override: Path | None) -> tuple[Path, bool]:
    """The routing file to check and whether the admin named it (a missing named file is an error)."""
    if override is not None:
        return override, True
    if settings is not None:
        # A path other than the default names a file the admin means to use: missing is an error.
        return settings.routing.file, settings.routing.file != Path("routing.toml")
    raw = os.environ.get(ROUTING_VAR)
    return (Path(raw), raw != "routing.toml") if raw else (Path("routing.toml"), False)


def _missing_routing(path: Path) -> str:
    return (f"{ROUTING_VAR}: {str(path)!r} does not exist; e.g. cp deploy/routing.example.toml {path} "
            f"(or unset {ROUTING_VAR} to route to every active CRM user)")


def named_routing_file_missing(settings: Any) -> str | None:
    """The problem when the routing file the admin named does not exist (``None`` otherwise).

    ``check`` fails on it; the commands that route (``sync``, ``run``, ``worker``) warn at start:
    without the file leads go to every active CRM user, without the territories, capacity and
    hours the admin meant to apply."""
    path, explicit = _routing_path(settings, None)
    return _missing_routing(path) if explicit and not path.exists() else None


def _check_routing(path: Path, explicit: bool) -> list[str]:
    from sync.config.routing import RoutingError, load_routing

    if not path.exists():
        if explicit:
            return [_missing_routing(path)]
        typer.echo(
            f"routing: no {path}: leads go to every active CRM user without limits "
            "(see deploy/routing.example.toml)"
        )
        return []
    try:
        config = load_routing(path)
    except RoutingError as exc:
        return exc.problems
    territories = len(config.territories)
    typer.echo(f"routing: {path}: {len(config.reps)} rep(s), {territories} territory(ies), ok")
    return []


def _check_store(settings: Any) -> bool:
    """Connect to the store without changing it and say which schema it holds."""
    import sqlalchemy as sa

    from sync.cli.common import store_failure_message
    from sync.store.engine import StoreError, create_store_engine, current_revision, store_schema

    url = settings.resolved_store_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        typer.echo("store: new SQLite file, created at the first start")
        return True
    try:
        engine = create_store_engine(url, store_schema(url, settings.store_schema))
        try:
            revision = current_revision(engine)
        finally:
            engine.dispose()
    except (StoreError, sa.exc.SQLAlchemyError) as exc:
        typer.echo(store_failure_message(settings, exc), err=True)
        return False
    typer.echo(f"store: reachable, schema {revision or 'empty (migrated at the first start)'}")
    return True


def _check_crm(settings: Any, routing_file: Path | None) -> bool:
    """Log in to the CRM through the real connector and print what it says about our budget."""
    from connectors.registry import CRMS

    if settings.crm not in CRMS and not any(settings.crm_section(name).has_credentials for name in CRMS):
        # ``sync``/``run`` would connect to the sandbox through a CRM section (make_connector):
        # with none set they fail at once, so check must not pass.
        typer.echo(
            f"crm: {settings.crm}: nothing to connect to: LEADPILOT_CRM=sandbox talks to a sandbox started with "
            "`leadpilot sandbox serve` through the Salesforce or HubSpot settings pointed at it (README: "
            "\"Trying it on the sandbox\"), and none are set, so `sync` and `run` would fail; set them, or "
            "LEADPILOT_CRM=salesforce or hubspot with your CRM's credentials (`leadpilot demo` needs neither)",
            err=True,
        )
        return False
    from sync.wiring.connector import make_connector

    try:
        connector = make_connector(settings)
        if getattr(type(connector), "preflight", None) is not None:
            return _preflight(connector, settings, routing_file)
        result = connector.check()
    except typer.Exit:
        raise
    except Exception as exc:  # CRMError, auth and network faults: messages carry no secrets
        typer.echo(f"crm: {settings.crm}: cannot connect: {type(exc).__name__}: {exc}", err=True)
        return False
    typer.echo(f"crm: {result.crm}: logged in as {result.user or '(unknown user)'}; {_budget(result.budget)}")
    for problem in result.problems:
        typer.echo(f"crm: {problem}", err=True)
    reps_ok = _check_reps(connector, routing_file) if result.ok and routing_file is not None else True
    return bool(result.ok) and reps_ok


def _preflight(connector: Any, settings: Any, routing_file: Path | None) -> bool:
    """The connector's live checklist (``connectors.preflight``): printed item by item, exit 2 on any ✗.

    The owners checked are the fallback owner and the reps the routing file names by id (reps
    named by e-mail are matched by ``_check_reps``).
    """
    from connectors.preflight import all_ok, render

    ids: list[str] = []
    if routing_file is not None:
        from sync.config.routing import load_routing

        config = load_routing(routing_file)
        owner = config.fallback.owner
        ids += [owner] if owner and "@" not in owner else []
        ids += [entry.id for entry in config.reps if entry.id]
    items = connector.preflight(user_ids=ids, writes_reason=settings.routing.write_reason)
    typer.echo(f"crm: {settings.crm}: preflight")
    for line in render(items):
        typer.echo(f"  {line}")
    reps_ok = True
    if routing_file is not None and any(i.ok and i.name == "owners readable" for i in items):
        reps_ok = _check_reps(connector, routing_file)
    if not all_ok(items) or not reps_ok:
        bad = sum(1 for i in items if not i.ok) + (not reps_ok)
        typer.echo(f"crm: {bad} check(s) failed: fix them and run `leadpilot check` again.", err=True)
        raise typer.Exit(code=INVALID)
    return True


def _check_reps(connector: Any, routing_file: Path) -> bool:
    """Warn about listed reps the CRM does not know or has deactivated (they get no leads); False
    when the fallback owner, named by e-mail, is no active CRM user (its leads would stay put)."""
    from sync.config.routing import load_routing, unresolved_fallback, unresolved_reps

    try:
        crm_reps = connector.list_reps()
    except Exception as exc:  # a warning only: the login itself worked
        typer.echo(f"routing: cannot list CRM users to match {routing_file}: {exc}", err=True)
        return True
    config = load_routing(routing_file)
    for warning in unresolved_reps(config, crm_reps):
        typer.echo(f"routing: {routing_file}: warning: {warning}; it gets no leads", err=True)
    problem = unresolved_fallback(config, crm_reps)
    if problem is not None:
        typer.echo(
            f"routing: {routing_file}: [fallback] owner: {problem}: leads no rep can take would stay with "
            "their current owner; name an active user by e-mail, or by id (Salesforce: a queue 00G… or a "
            "user 005…; HubSpot: an owner id), or leave [fallback] out on purpose",
            err=True,
        )
        return False
    return True


def _budget(budget: Any) -> str:
    if budget.limit is None and budget.remaining is None:
        return "API budget: not reported"
    used = "?" if budget.used is None else f"{budget.used:,}"
    limit = "?" if budget.limit is None else f"{budget.limit:,}"
    remaining = "?" if budget.remaining is None else f"{budget.remaining:,}"
    return f"API budget ({budget.window}): {used} of {limit} used, {remaining} remaining"


def register(app: typer.Typer) -> None:
    """Add ``check`` to the ``leadpilot`` CLI."""
    app.command("check")(check)
