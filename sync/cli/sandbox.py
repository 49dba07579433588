"""``leadpilot sandbox serve``: run the local sandbox CRM until SIGTERM.

Prints exactly one JSON line on stdout (URLs, credentials, CA path, admin URL) so that a
parent process can read it and point the clients at the sandbox.
"""

from __future__ import annotations

import sys

import typer

sandbox_app = typer.Typer(help="A local CRM (Salesforce + HubSpot dialects) with a simulated sales world.",
                          no_args_is_help=True)


@sandbox_app.command("serve")
def serve(
    port: int = typer.Option(0, help="TCP port on 127.0.0.1 (0 = any free port)."),
    seed: int = typer.Option(0, help="Seed of the simulated world."),
    leads: int = typer.Option(0, help="Leads to preload (created over the last 90 simulated days)."),
    generated_leads: int = typer.Option(0, "--generated-leads",
                                        help="Old leads made on demand from the seed (up to millions, constant memory)."),
    scenario: str = typer.Option("skilled", help="flat (reps equally good) or skilled (rep x segment differences)."),
    faults: str = typer.Option("", help='Fault injection, e.g. "p_429=0.1,p_5xx=0.05,token_expiry_after_calls=50".'),
) -> None:
    """Start the sandbox, print its contract JSON on one line, serve until SIGTERM or Ctrl-C."""
    from sandbox.admin import BadFaults, parse_faults
    from sandbox.server import SandboxServer, serve_until_signal
    from sandbox.world.simulation import SCENARIOS

    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"use one of: {', '.join(SCENARIOS)}", param_hint="--scenario")
    if leads < 0:
        raise typer.BadParameter("must be 0 or more", param_hint="--leads")
    if generated_leads < 0:
        raise typer.BadParameter("must be 0 or more", param_hint="--generated-leads")
    try:
        fault_settings = parse_faults(faults)
    except BadFaults as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from None
    server = SandboxServer(seed=seed, leads=leads, scenario=scenario, faults=fault_settings, port=port,
                           generated_leads=generated_leads)
    try:
        serve_until_signal(server, sys.stdout)
    except OSError as exc:
        typer.echo(f"cannot start the sandbox on 127.0.0.1:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(code=1) from None


def register(app: typer.Typer) -> None:
    """Add the ``sandbox`` command group to the ``leadpilot`` CLI."""
    app.add_typer(sandbox_app, name="sandbox")
